#!/usr/bin/env bash
# No charge lost to a dead replica: requests in flight when the server is SIGKILLed were charged
# (a reservation) and never answered; a restarted server's sweep must refund exactly those.
# Usage: tests/curl/sigkill.sh PATH/TO/idverify
set -euo pipefail

BIN="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="$ROOT/../shared/data"
WORK="$(mktemp -d /tmp/idverify-sigkill.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# A short sweep bound (request timeout 3 s + grace 1 s + margin 1 s), so the test waits seconds.
export IDVERIFY_DATA_DIR="$WORK/data" IDVERIFY_LISTEN="127.0.0.1:$PORT" IDVERIFY_REQUEST_TIMEOUT_SECS=3 \
  IDVERIFY_SHUTDOWN_GRACE_SECS=1 IDVERIFY_RESERVATION_SWEEP_MARGIN_SECS=1 IDVERIFY_MAX_IN_FLIGHT=2 \
  IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS=0
export IDVERIFY_MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
unset IDVERIFY_DATABASE_URL
cleanup() {
  [[ -n "${SERVER_PID:-}" ]] && kill -9 "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

start() {
  "$BIN" serve >> "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "FAIL server did not start"; tail -5 "$WORK/server.log"; exit 1
}
balance() { "$BIN" org show sigkill | sed -n 's/^balance //p'; }

if [[ -d "$SHARED" ]]; then
  DOC="$SHARED/mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png"
  FACE="$SHARED/faces/dev/$(sed -n '2p' "$SHARED/faces/dev/pairs.csv" | cut -d, -f1)"
else
  echo "SKIP: ../shared/data absent: the requests use a generated image"
  python3 "$ROOT/scripts/lib/generated_png.py" "$WORK/img.png" 640 480
  DOC="$WORK/img.png"; FACE="$WORK/img.png"
fi

KEY="$("$BIN" org create sigkill --tokens 300 | tail -n 1)"
start
# Sixteen verifies at once (two run, the rest queue), then the process is killed mid-way.
for i in $(seq 1 16); do
  curl -sS -o /dev/null -w '%{http_code}\n' -H "x-api-key: $KEY" -F "documentImage=@$DOC" \
    -F "faceImage=@$FACE" "$BASE/v1/identity/verify" > "$WORK/status.$i" 2>/dev/null &
done
sleep 1.2
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
wait || true
ANSWERED="$(cat "$WORK"/status.* | grep -c '^200$' || true)"
AFTER_KILL="$(balance)"
echo "answered before the kill: $ANSWERED of 16; balance right after the kill: $AFTER_KILL"
if (( AFTER_KILL >= 300 - 3 * ANSWERED )); then
  echo "FAIL the kill left no unanswered charge to refund (the test did not test anything)"; exit 1
fi

start
# The sweep runs at start and every second; the bound is 5 s.
for _ in $(seq 1 40); do
  [[ "$(balance)" == $((300 - 3 * ANSWERED)) ]] && break
  sleep 0.5
done
FINAL="$(balance)"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
if [[ "$FINAL" == $((300 - 3 * ANSWERED)) ]] && grep -q "refunded the charges of requests left unanswered" "$WORK/server.log"; then
  echo "ok   SIGKILL: $(( (300 - AFTER_KILL) / 3 - ANSWERED )) unanswered charges refunded by the sweep; balance $FINAL = 300 - 3 x $ANSWERED answered"
else
  echo "FAIL SIGKILL: balance $FINAL, want $((300 - 3 * ANSWERED))"; tail -5 "$WORK/server.log"; exit 1
fi
