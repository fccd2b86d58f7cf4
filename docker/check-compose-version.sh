#!/bin/sh
# Is this host's Docker Compose new enough for compose.yaml and compose.cluster.yaml?
# They need Docker Compose v2.24.0 or later: `env_file` entries with `required: false` and the `!reset`
# tag of compose.cluster.yaml arrived in v2.24.0; `${VAR:+alternative}` interpolation is Compose v2's
# (Debian's docker-compose 1.29, the Python program, rejects all three).
#   sh docker/check-compose-version.sh
set -eu
MIN=2.24.0
if ! version=$(docker compose version --short 2>/dev/null); then
    echo "docker compose (the v2 plugin) not found: compose.yaml needs Docker Compose v$MIN or later" >&2
    exit 1
fi
version=${version#v}
oldest=$(printf '%s\n%s\n' "$MIN" "$version" | sort -V | head -n 1)
if [ "$oldest" != "$MIN" ]; then
    echo "Docker Compose $version is older than $MIN: compose.yaml uses env_file.required, \${VAR:+...} and !reset (v$MIN+)" >&2
    exit 1
fi
echo "Docker Compose $version: new enough (compose.yaml needs $MIN or later)"
