#!/usr/bin/env bash
# Hostile-input run against the real binary with the real models (issue 6).
# Usage: scripts/hostile-inputs.sh [PATH/TO/idverify]   (builds the debug binary when not given)
# Env: HOSTILE_COUNT (default 10000 requests), HOSTILE_CONCURRENCY (8), HOSTILE_SEED (7),
#      HOSTILE_MAX_RSS_MB (3000).
#
# Starts the server on embedded defaults (SQLite in a temp dir, 127.0.0.1 on a free port), creates
# an org with plenty of tokens and no effective rate limit, sends the generated bad requests
# (scripts/hostile_inputs.py), then checks: no panic in the log, no 5xx (503 + Retry-After counted
# apart), documented error bodies, bounded RSS, and that a good request still works afterwards.
# Last line: `requests=N 5xx=N panics=N max_rss_mb=N`. Exits non-zero on any violation.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
export IDVERIFY_MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
SHARED="$ROOT/../shared/data"
WORK="$(mktemp -d /tmp/idverify-hostile.XXXXXX)"
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ $# -ge 1 ]]; then
  BIN="$(realpath "$1")"
else
  cargo build --bin idverify
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/idverify"
fi
[[ -x "$BIN" ]] || { echo "hostile: no binary at $BIN" >&2; exit 1; }

bash scripts/fetch-models.sh >/dev/null

# Pillow makes the valid seed images the generator mutates (a private venv, created once).
VENV="$CACHE/venv-hostile"
if ! "$VENV/bin/python" -c 'import PIL' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet Pillow==11.3.0
fi

# Embedded defaults; only where the data lives and the port are set. The generator is one client
# sending thousands of requests: the org's rate limit is lifted so the inputs reach the decoders
# instead of stopping at 429.
# shellcheck source=scripts/lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
start_idverify "$BIN" "$WORK" hostile 1000000 100000
BASE="$URL"
echo "server pid $SERVER_PID on $BASE (binary $BIN)"

status=0
HOSTILE_SUMMARY="$WORK/summary" "$VENV/bin/python" scripts/hostile_inputs.py \
  --port "$PORT" --key "$KEY" --pid "$SERVER_PID" \
  --count "${HOSTILE_COUNT:-10000}" --concurrency "${HOSTILE_CONCURRENCY:-8}" \
  --max-rss-mb "${HOSTILE_MAX_RSS_MB:-3000}" || status=1

# A good request afterwards: a real face when the shared data is there, else a generated image.
if [[ -d "$SHARED/faces/dev" ]]; then
  FACE="$SHARED/faces/dev/$(sed -n '2p' "$SHARED/faces/dev/pairs.csv" | cut -d, -f1)"
else
  FACE="$WORK/face.jpg"
  "$VENV/bin/python" -c 'from PIL import Image; Image.new("RGB", (320, 240), (90, 120, 150)).save("'"$FACE"'")'
fi
good_status="$(curl -sS -o "$WORK/good.json" -w '%{http_code}' "$BASE/v1/face/detect" -H "x-api-key: $KEY" -F "image=@$FACE")" \
  || good_status="curl-failed"
if [[ "$good_status" == "200" ]] && grep -q '"faceDetection"' "$WORK/good.json"; then
  echo "good request after the run: 200, $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["faceDetection"]; print("faceDetected=%s faceCount=%s" % (d["faceDetected"], d["faceCount"]))' "$WORK/good.json")"
else
  echo "VIOLATION: good request after the run answered $good_status: $(head -c 300 "$WORK/good.json" 2>/dev/null)"
  status=1
fi
if [[ -d "$SHARED/faces/dev" ]] && ! grep -q '"faceDetected":true' "$WORK/good.json"; then
  echo "VIOLATION: no face found in a real face photo after the run"
  status=1
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "VIOLATION: the server is not running any more"
  status=1
fi
panics="$(grep -c 'panicked' "$WORK/server.log" || true)"
if [[ "$panics" != "0" ]]; then
  echo "VIOLATION: $panics panic line(s) in the server log:"
  grep 'panicked' "$WORK/server.log" | head -5
  status=1
fi
# Nothing the callers sent may reach the log (keys or field values).
if grep -q -- "$KEY" "$WORK/server.log"; then
  echo "VIOLATION: the API key appears in the server log"
  status=1
fi

summary="$(cat "$WORK/summary" 2>/dev/null || echo 'requests=0 5xx=? max_rss_mb=?')"
requests="$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$summary")"
fivexx="$(sed -n 's/.*5xx=\([0-9?]*\).*/\1/p' <<<"$summary")"
rss="$(sed -n 's/.*max_rss_mb=\([0-9?]*\).*/\1/p' <<<"$summary")"
[[ "$fivexx" == "0" ]] || status=1
[[ $status -eq 0 ]] && echo "hostile inputs: PASS" || echo "hostile inputs: FAIL"
echo "requests=$requests 5xx=$fivexx panics=$panics max_rss_mb=$rss"
exit $status
