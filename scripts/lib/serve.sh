# Sourced by the benchmark and hostile-input scripts: starts `idverify serve` on embedded defaults
# on a free 127.0.0.1 port with its data in a temp dir and one org, and waits until it is ready.
#
#   prepare_release ROOT BUILD   # builds the release binary (BUILD=1, or when it is missing) and
#                                # fetches the models when absent; sets BIN and MODELS
#   start_idverify BIN WORK ORG TOKENS RATE   # RATE: per-second rate limit (and burst) of ORG
#
# Sets KEY (the org's API key), PORT, URL and SERVER_PID; the server's stderr and stdout go to
# WORK/server.log. The caller's EXIT trap should call stop_idverify.

prepare_release() {
    local root="$1" build="$2"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    BIN="$CARGO_TARGET_DIR/release/idverify"
    if [[ $build -eq 1 || ! -x "$BIN" ]]; then
        cargo build --release --bin idverify >&2
    fi
    MODELS="${IDVERIFY_MODELS_DIR:-$root/models}"
    [[ -f "$MODELS/libonnxruntime.so" ]] || make -C "$root" models >&2
}

start_idverify() {
    local bin="$1" work="$2" org="$3" tokens="$4" rate="$5"
    # Embedded defaults: no PostgreSQL, no S3, no config file from the caller's environment.
    unset IDVERIFY_DATABASE_URL IDVERIFY_CONFIG
    local name
    while IFS='=' read -r name _; do
        [[ "$name" == IDVERIFY_S3_* ]] && unset "$name"
    done < <(env)
    export IDVERIFY_DATA_DIR="$work/data"
    KEY="$("$bin" org create "$org" --tokens "$tokens" | tail -n 1)"
    "$bin" org rate-limit "$org" --per-second "$rate" --burst "$rate" >/dev/null
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    URL="http://127.0.0.1:$PORT"
    # No drain delay: nothing balances this server, stop_idverify should not wait for one.
    IDVERIFY_LISTEN="127.0.0.1:$PORT" IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS=0 "$bin" serve >"$work/server.log" 2>&1 &
    SERVER_PID=$!
    local _i
    for _i in $(seq 1 240); do
        curl -fs "$URL/readyz" >/dev/null 2>&1 && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server exited:" >&2
            tail -n 20 "$work/server.log" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "server not ready after 120 s" >&2
    return 1
}

stop_idverify() {
    if [[ -n "${SERVER_PID:-}" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
