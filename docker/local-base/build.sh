#!/usr/bin/env bash
# Stand-ins for the official base images, built from Debian's packages, for hosts that cannot pull from
# Docker Hub (CI here). Users with Docker Hub never need this: compose.yaml and the Dockerfiles take the
# official images by default, and the names below reach them only through PYTHON_IMAGE / POSTGRES_IMAGE.
#
#   bash docker/local-base/build.sh            # builds what is missing, prints the two variables
#   eval "$(bash docker/local-base/build.sh)"  # ... and exports them into this shell
#
# python:3.11.14-slim-bookworm  ->  rfsweep-local/python:3.11-bookworm   (Debian bookworm's Python 3.11)
# postgres:17.6-bookworm        ->  rfsweep-local/postgres:17-trixie     (Debian trixie's PostgreSQL 17: bookworm ships 15)
#
# A build inside a container reaches the package index through this host's TLS interception only with the
# host's extra CA certificates (the bundle pip here trusts): the python stand-in carries that bundle, copied
# in at build time from the host and never committed. The official images never need it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
prefix=${LOCAL_BASE_PREFIX:-rfsweep-local}
python_image="$prefix/python:3.11-bookworm"
postgres_image="$prefix/postgres:17-trixie"
log() { echo "[local-base $(date +%H:%M:%S)] $*" >&2; }

# debian:SUITE from `debootstrap --variant=minbase`, imported as an image.
debian_base() {
    local suite=$1 image="$prefix/debian:$1"
    if docker image inspect "$image" >/dev/null 2>&1; then return; fi
    command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install debootstrap"; exit 1; }
    local root
    root=$(mktemp -d)
    log "debootstrap $suite from $mirror"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
    rm -rf "$root" "$root.log"
    log "built $image"
}

build_stand_in() {
    local image=$1 dockerfile=$2 context=$3
    shift 3
    if docker image inspect "$image" >/dev/null 2>&1; then return; fi
    log "building $image"
    DOCKER_BUILDKIT=0 docker build -q -t "$image" -f "$dockerfile" "$@" "$context" >/dev/null
    log "built $image"
}

if ! docker image inspect "$python_image" >/dev/null 2>&1; then
    debian_base bookworm
    context=$(mktemp -d)
    trap 'rm -rf "$context"' EXIT
    cp "$here/python.Dockerfile" "$context/Dockerfile"
    # The CA bundle pip on this host trusts (pip's `cert` setting), else the system bundle.
    cert=$(python3 -m pip config get global.cert 2>/dev/null || true)
    cert=${cert:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
    if [ -f "$cert" ]; then cp "$cert" "$context/host-ca.pem"; else : >"$context/host-ca.pem"; fi
    build_stand_in "$python_image" "$context/Dockerfile" "$context" --build-arg "BASE=$prefix/debian:bookworm"
fi
if ! docker image inspect "$postgres_image" >/dev/null 2>&1; then
    debian_base trixie
    build_stand_in "$postgres_image" "$here/postgres.Dockerfile" "$here" --build-arg "BASE=$prefix/debian:trixie"
fi
echo "export PYTHON_IMAGE=$python_image POSTGRES_IMAGE=$postgres_image"
