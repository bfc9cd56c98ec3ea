#!/usr/bin/env bash
# Smoke test of the real binary with the real models: every endpoint and every error status a
# caller can provoke from outside (400, 401, 402, 403, 404, 429; 500/503 are covered in-process).
# Usage: tests/curl/smoke.sh PATH/TO/idverify   (S3 is used when IDVERIFY_S3_* are exported)
#
# Against a server that is already running (a container, say), nothing is started:
#   IDVERIFY_SMOKE_BASE_URL=http://127.0.0.1:8080        the server
#   IDVERIFY_SMOKE_ADMIN="podman exec NAME idverify"     how to run `idverify org ...` against its store
#   IDVERIFY_SMOKE_LOGS="podman logs NAME"               optional: prints its log, for the privacy check
#   (IDVERIFY_S3_BUCKET: set it when that server has S3.) The SIGTERM check is then the caller's.
set -euo pipefail

REMOTE="${IDVERIFY_SMOKE_BASE_URL:-}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="$ROOT/../shared/data"
WORK="$(mktemp -d /tmp/idverify-smoke.XXXXXX)"
if [[ -n "$REMOTE" ]]; then
  [[ -n "${IDVERIFY_SMOKE_ADMIN:-}" ]] || { echo "IDVERIFY_SMOKE_ADMIN is needed with IDVERIFY_SMOKE_BASE_URL" >&2; exit 2; }
  read -r -a ADMIN <<<"$IDVERIFY_SMOKE_ADMIN"
  BASE="${REMOTE%/}"
else
  BIN="$(realpath "$1")"
  ADMIN=("$BIN")
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  BASE="http://127.0.0.1:$PORT"
  export IDVERIFY_DATA_DIR="$WORK/data" IDVERIFY_LISTEN="127.0.0.1:$PORT"
  # Stop at once on SIGTERM (the drain delay is tested in tests/api/probes.rs).
  export IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS=0
  export IDVERIFY_MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
  unset IDVERIFY_DATABASE_URL
fi
PASS=0
FAIL=0

cleanup() {
  [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# expect NAME STATUS CODE_OR_FIELD curl-args...: checks the status and that the body has the given text.
expect() {
  local name="$1" want_status="$2" want_text="$3"
  shift 3
  local status
  status="$(curl -sS -o "$WORK/body" -w '%{http_code}' "$@")" || status="curl-failed"
  if [[ "$status" == "$want_status" ]] && { [[ -z "$want_text" ]] || grep -q -- "$want_text" "$WORK/body"; }; then
    PASS=$((PASS + 1))
    echo "ok   $name ($status)"
  else
    FAIL=$((FAIL + 1))
    echo "FAIL $name: got $status, want $want_status with '$want_text'; body: $(head -c 400 "$WORK/body")"
  fi
}

new_key() { # name tokens -> prints the API key (last line of `org create`)
  "${ADMIN[@]}" org create "$1" --tokens "$2" | tail -n 1
}

KEY="$(new_key smoke-org 100)"
POOR_KEY="$(new_key smoke-poor 0)"
SLOW_KEY="$(new_key smoke-limited 100)"
"${ADMIN[@]}" org rate-limit smoke-limited --per-second 0.01 --burst 1 >/dev/null

if [[ -z "$REMOTE" ]]; then
  "$BIN" serve > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
fi
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

# Images: real dev images when ../shared is present, else generated ones.
if [[ -d "$SHARED" ]]; then
  DOC="$SHARED/mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png"
  FACE_A="$SHARED/faces/dev/$(sed -n '2p' "$SHARED/faces/dev/pairs.csv" | cut -d, -f1)"
  FACE_B="$SHARED/faces/dev/$(sed -n '2p' "$SHARED/faces/dev/pairs.csv" | cut -d, -f2)"
else
  echo "SKIP: ../shared/data absent: smoke test uses generated images (no faces, no document)"
  python3 "$ROOT/scripts/lib/generated_png.py" "$WORK/doc.png" 64 48
  DOC="$WORK/doc.png"; FACE_A="$WORK/doc.png"; FACE_B="$WORK/doc.png"
fi

H=(-H "x-api-key: $KEY")
expect "healthz" 200 '"ok"' "$BASE/healthz"
expect "readyz" 200 '"ready":true' "$BASE/readyz"
expect "readyz: the text recognizer answered its warm-up" 200 '"text_recognizer":{"model":"PP-OCRv6' "$BASE/readyz"
expect "readyz: the card text recognizer answered its warm-up" 200 '"card_text_recognizer":{"model":"PP-OCRv6' "$BASE/readyz"
# The admin command runs where the server runs (the host binary, or `podman exec` in the container).
if "${ADMIN[@]}" healthcheck; then PASS=$((PASS + 1)); echo "ok   idverify healthcheck exits 0"; else FAIL=$((FAIL + 1)); echo "FAIL idverify healthcheck"; fi
expect "openapi" 200 '"openapi":"3.1' "$BASE/openapi.json"
expect "verify multipart" 200 '"overallConfidence"' "${H[@]}" -F "documentImage=@$DOC" -F "faceImage=@$FACE_A" -F documentType=auto "$BASE/v1/identity/verify"
B64_FACE="$(base64 -w0 "$FACE_A")"
printf '{"image":"%s"}' "$B64_FACE" > "$WORK/detect.json"
expect "face/detect json base64" 200 '"faceDetection"' "${H[@]}" -H 'content-type: application/json' --data-binary "@$WORK/detect.json" "$BASE/v1/face/detect"
expect "face/compare multipart" 200 '"faceMatch"' "${H[@]}" -F "sourceImage=@$FACE_A" -F "targetImage=@$FACE_B" "$BASE/v1/face/compare"
expect "document/scan multipart" 200 '"document"' "${H[@]}" -F "documentImage=@$DOC" "$BASE/v1/document/scan"
expect "metrics" 200 'idverify_http_requests_total{route="/v1/identity/verify",status="200"}' "$BASE/metrics"

# Driver's licence fronts verified with a selfie of the same person: synthetic US and EU licences
# (scripts/synth_fronts.py, portraits from LFW) read from their printed fields (the EU one's MRZ
# line too).
VENV_PY="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}/venv/bin/python"
if [[ -d "$SHARED/lfw/dev" && -x "$VENV_PY" ]]; then
  "$VENV_PY" "$ROOT/scripts/synth_fronts.py" --lfw "$SHARED/lfw/dev" --out "$WORK/fronts" --count 2 >/dev/null
  # The US licence once more, photographed sideways (a quarter turn clockwise, no EXIF
  # orientation): its text is read in its upright turn and its portrait found on the turned page.
  "$VENV_PY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).rotate(-90, expand=True).save(sys.argv[2], quality=92)' \
    "$WORK/fronts/000.jpg" "$WORK/fronts/000_sideways.jpg"
  # And photographed from twice as far: the front in the middle of a plain page twice its size.
  "$VENV_PY" -c 'import sys; from PIL import Image; f = Image.open(sys.argv[1]); p = Image.new("RGB", (2 * f.width, 2 * f.height), (214, 208, 196)); p.paste(f, (f.width // 2, f.height // 3)); p.save(sys.argv[2], quality=92)' \
    "$WORK/fronts/000.jpg" "$WORK/fronts/000_afar.jpg"
  # Row 2 of the manifest is a US licence (000.jpg), row 3 an EU one (001.jpg).
  for case in 2:viz_aamva: 3:viz_eu_dl: 2:viz_aamva:_sideways 2:viz_aamva:_afar; do
    IFS=: read -r row source variant <<<"$case"
    line="$(sed -n "${row}p" "$WORK/fronts/manifest.csv")"
    image="$(cut -d, -f1 <<<"$line")"
    FRONT="$WORK/fronts/${image%.jpg}$variant.jpg"; SELFIE="$SHARED/lfw/dev/$(cut -d, -f4 <<<"$line")"
    case $variant in _sideways) how=" photographed sideways" ;; _afar) how=" photographed from afar" ;; *) how="" ;; esac
    expect "verify a $source licence front$how with the holder's selfie" 200 \
      '"verified":true' "${H[@]}" -F "documentImage=@$FRONT" -F "faceImage=@$SELFIE" -F documentType=drivers_license \
      "$BASE/v1/identity/verify"
    if grep -q "\"source\":\"$source\"" "$WORK/body"; then
      PASS=$((PASS + 1)); echo "ok   the licence was read from its visual zone ($source$variant)"
    else
      FAIL=$((FAIL + 1)); echo "FAIL licence front source: $(head -c 400 "$WORK/body")"
    fi
    # A US licence names its state (the manifest's jurisdiction); an EU one its country only.
    state="$(cut -d, -f3 <<<"$line")"
    if [[ $source == viz_aamva ]]; then want="\"issuingJurisdiction\":\"$state\""; else want='"issuingJurisdiction":null'; fi
    if grep -q "$want" "$WORK/body"; then
      PASS=$((PASS + 1)); echo "ok   $want ($source$variant)"
    else
      FAIL=$((FAIL + 1)); echo "FAIL want $want: $(head -c 400 "$WORK/body")"
    fi
  done
else
  echo "SKIP: licence front verify (needs ../shared/data/lfw and the models venv from make models)"
fi

expect "400 bad documentType" 400 '"invalid_document_type"' "${H[@]}" -F "documentImage=@$DOC" -F "faceImage=@$FACE_A" -F documentType=visa "$BASE/v1/identity/verify"
expect "400 unsupported format" 400 '"unsupported_image_format"' "${H[@]}" -F "image=@$ROOT/README.md;type=application/octet-stream" "$BASE/v1/face/detect"
expect "400 bad json" 400 '"invalid_json"' "${H[@]}" -H 'content-type: application/json' -d '{"image":' "$BASE/v1/face/detect"
expect "401 no key" 401 '"unauthorized"' -F "image=@$FACE_A" "$BASE/v1/face/detect"
expect "401 wrong key" 401 '"unauthorized"' -H "x-api-key: idv_wrong_key" -F "image=@$FACE_A" "$BASE/v1/face/detect"
expect "402 no tokens" 402 '"insufficient_tokens"' -H "x-api-key: $POOR_KEY" -F "image=@$FACE_A" "$BASE/v1/face/detect"
expect "404 unknown route" 404 '"not_found"' "${H[@]}" "$BASE/v1/nothing"
expect "429 first passes" 200 '"faceDetection"' -H "x-api-key: $SLOW_KEY" -F "image=@$FACE_A" "$BASE/v1/face/detect"
expect "429 rate limited" 429 '"rate_limited"' -H "x-api-key: $SLOW_KEY" -F "image=@$FACE_A" "$BASE/v1/face/detect"

if [[ -n "${IDVERIFY_S3_BUCKET:-}" ]]; then
  expect "uploads presign" 200 '"url"' "${H[@]}" -H 'content-type: application/json' -d '{"contentType":"image/jpeg"}' "$BASE/v1/uploads"
  URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/body")"
  URI="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uri"])' "$WORK/body")"
  expect "upload PUT to presigned url" 200 '' -X PUT -H 'content-type: image/jpeg' --data-binary "@$FACE_A" "$URL"
  expect "verify with s3 key + multipart selfie" 200 '"overallConfidence"' "${H[@]}" -F "documentImage=$URI" -F "faceImage=@$FACE_B" "$BASE/v1/identity/verify"
  expect "403 foreign s3 key" 403 '"s3_key_forbidden"' "${H[@]}" -F "image=s3://$IDVERIFY_S3_BUCKET/orgs/someone-else/uploads/x.jpg" "$BASE/v1/face/detect"
  OTHER_KEY="$(new_key smoke-other 10)"
  expect "403 other org's uploaded key" 403 '"s3_key_forbidden"' -H "x-api-key: $OTHER_KEY" -F "image=$URI" "$BASE/v1/face/detect"
else
  echo "SKIP: S3 checks (IDVERIFY_S3_BUCKET unset)"
fi

# Idempotency: curl picks a new multipart boundary for every request, so a retry with the same
# Idempotency-Key differs in its bytes; it must still be a replay, charged once.
IDEM_KEY="$(new_key smoke-idem 10)"
for i in 1 2; do
  curl -sS -D "$WORK/idem$i.headers" -o "$WORK/idem$i.json" -H "x-api-key: $IDEM_KEY" \
    -H "Idempotency-Key: smoke-retry-1" -F "documentImage=@$DOC" -F "faceImage=@$FACE_A" \
    "$BASE/v1/identity/verify" || true
done
IDEM_BALANCE="$("${ADMIN[@]}" org show smoke-idem | sed -n 's/^balance //p')"
if grep -q '"overallConfidence"' "$WORK/idem1.json" && cmp -s "$WORK/idem1.json" "$WORK/idem2.json" \
  && grep -qi '^idempotent-replayed: true' "$WORK/idem2.headers" && [[ "$IDEM_BALANCE" == 7 ]]; then
  PASS=$((PASS + 1)); echo "ok   retried curl -F with an Idempotency-Key is a replay, charged once"
else
  FAIL=$((FAIL + 1))
  echo "FAIL retried curl -F: balance $IDEM_BALANCE (want 7); $(head -c 300 "$WORK/idem2.json")"
fi

# Graceful shutdown: SIGTERM, the process exits cleanly.
if [[ -z "$REMOTE" ]]; then
  kill -TERM "$SERVER_PID"
  if wait "$SERVER_PID"; then PASS=$((PASS + 1)); echo "ok   SIGTERM exits 0"; else FAIL=$((FAIL + 1)); echo "FAIL SIGTERM exit"; fi
  SERVER_PID=""
elif [[ -n "${IDVERIFY_SMOKE_LOGS:-}" ]]; then
  read -r -a LOGS <<<"$IDVERIFY_SMOKE_LOGS"
  "${LOGS[@]}" > "$WORK/server.log" 2>&1
fi

# Privacy: the server log holds no API key and no image data.
# (The ICAO specimen read above carries the name ERIKSSON and document number L898902C3.)
if [[ ! -f "$WORK/server.log" ]]; then
  echo "SKIP: privacy check of the server log (IDVERIFY_SMOKE_LOGS unset)"
elif grep -q -- "$KEY" "$WORK/server.log" || grep -q -- "${B64_FACE:0:40}" "$WORK/server.log" \
  || grep -qi -e ERIKSSON -e L898902C3 -e 1974-08-12 "$WORK/server.log"; then
  FAIL=$((FAIL + 1)); echo "FAIL server log contains a key or image data"
else
  PASS=$((PASS + 1)); echo "ok   server log holds no key or image data"
fi

echo "smoke: $PASS passed, $FAIL failed"
[[ "$FAIL" == 0 ]]
