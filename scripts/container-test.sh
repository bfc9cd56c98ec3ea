#!/usr/bin/env bash
# Builds the container image with podman, runs it, and runs the curl smoke test against it.
#   scripts/container-test.sh            (or: make test-container)
# Makes the stand-in base images first when they are missing (scripts/container-base-images.sh).
# The container runs on the host network on a free loopback port, with SQLite inside the container;
# CONTAINER_ENV_FILE=path passes an env file (IDVERIFY_DATABASE_URL, IDVERIFY_S3_*, ...) to point
# it at a PostgreSQL or S3 instead. The HEALTHCHECK is reported but never decides the result:
# podman runs it only on demand without systemd, and the image's health command is only as new as
# the binary in it.
# Last line: image=... size_mb=... build_s=... smoke=ok|failed
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}/container"
IMAGE="${IDVERIFY_IMAGE:-localhost/idverify:test}"
NAME="idverify-ctest-$$"
# shellcheck source=scripts/lib/podman.sh
source "$ROOT/scripts/lib/podman.sh"
podman_setup "$CACHE"
cd "$ROOT"

log() { echo "[container-test] $*" >&2; }
load() { sed -n 's/.*load average: //p' < <(uptime); }
cleanup() { "${PODMAN[@]}" rm -f -v -t 0 "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

bash scripts/container-base-images.sh

log "building $IMAGE (load before: $(load))"
LOAD_BEFORE="$(load)"
START="$(date +%s)"
# --format docker keeps the HEALTHCHECK (the OCI image format has none); --network host lets the
# model fetch reach PyPI and npm the way the host does (proxy variables pass through as build args).
BUILD_ARGS=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n "${!v:-}" ]] && BUILD_ARGS+=(--build-arg "$v=${!v}")
done
"${PODMAN[@]}" build --network host --format docker "${BUILD_ARGS[@]}" -t "$IMAGE" . >&2
BUILD_S=$(($(date +%s) - START))
SIZE_BYTES="$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")"
SIZE_MB=$((SIZE_BYTES / 1000000))
log "built in ${BUILD_S}s (load before: $LOAD_BEFORE; after: $(load)), ${SIZE_MB} MB"
"${PODMAN[@]}" history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-140 | head -8 >&2

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# Read-only root filesystem, as deploy/kubernetes/deployment.yaml runs it; the data dir is the
# image's volume.
RUN_ARGS=(--name "$NAME" --network host --read-only -e "IDVERIFY_LISTEN=127.0.0.1:$PORT")
[[ -n "${CONTAINER_ENV_FILE:-}" ]] && RUN_ARGS+=(--env-file "$CONTAINER_ENV_FILE")
"${PODMAN[@]}" run -d "${RUN_ARGS[@]}" "$IMAGE" >/dev/null
BASE="http://127.0.0.1:$PORT"
READY=0
for _ in $(seq 1 240); do
    if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then READY=1; break; fi
    [[ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME")" == true ]] || break
    sleep 0.5
done
if [[ $READY != 1 ]]; then
    "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20 >&2
    log "the container never became ready"
    echo "image=$IMAGE size_mb=$SIZE_MB build_s=$BUILD_S smoke=failed"
    exit 1
fi
log "ready on $BASE"

SMOKE=ok
S3_ENV=()
if [[ -n "${CONTAINER_ENV_FILE:-}" ]] && grep -q '^IDVERIFY_S3_BUCKET=' "$CONTAINER_ENV_FILE"; then
    S3_ENV=("IDVERIFY_S3_BUCKET=$(sed -n 's/^IDVERIFY_S3_BUCKET=//p' "$CONTAINER_ENV_FILE")")
fi
env "${S3_ENV[@]}" IDVERIFY_SMOKE_BASE_URL="$BASE" \
    IDVERIFY_SMOKE_ADMIN="${PODMAN[*]} exec $NAME /usr/local/bin/idverify" \
    IDVERIFY_SMOKE_LOGS="${PODMAN[*]} logs $NAME" \
    bash tests/curl/smoke.sh || SMOKE=failed

# Informational only (see the header).
if "${PODMAN[@]}" healthcheck run "$NAME" >/dev/null 2>&1; then
    log "healthcheck: healthy"
else
    log "healthcheck: not passing (an image whose binary predates \`idverify healthcheck\`?)"
fi

# What an orchestrator does: SIGTERM, then the process must drain and exit 0 within the grace.
"${PODMAN[@]}" stop -t 60 "$NAME" >/dev/null
EXIT_CODE="$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")"
if [[ "$EXIT_CODE" == 0 ]]; then
    echo "ok   podman stop (SIGTERM): exit 0"
else
    echo "FAIL podman stop (SIGTERM): exit $EXIT_CODE"
    SMOKE=failed
fi

echo "image=$IMAGE size_mb=$SIZE_MB build_s=$BUILD_S smoke=$SMOKE"
[[ $SMOKE == ok ]]
