#!/usr/bin/env bash
# Captures the examples of the OpenAPI document from the real server with the real models: a 200
# of verify, scan, detect and compare on the ICAO specimen passport and a dev face pair, and one
# answer of each error a caller can provoke from outside. Writes src/http/openapi_examples.json;
# then `UPDATE_SNAPSHOTS=1 cargo test -p idverify --test api openapi` and review the diff.
# Needs ../shared/data (the images are not in the repository). Run it after a response field changes.
# Usage: scripts/openapi-examples.sh PATH/TO/idverify
set -euo pipefail

BIN="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared/data"
WORK="$(mktemp -d /tmp/idverify-examples.XXXXXX)"
export IDVERIFY_MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
# shellcheck source=lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
# shellcheck source=lib/contract-tools.sh
source "$ROOT/scripts/lib/contract-tools.sh"

cleanup() {
    stop_idverify
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ -d "$SHARED" ]] || { echo "needs ../shared/data for real images"; exit 1; }
contract_images "$WORK"
start_idverify "$BIN" "$WORK" examples-org 1000 100
POOR="$("$BIN" org create examples-poor --tokens 0 | tail -n 1)"
SLOW="$("$BIN" org create examples-slow --tokens 100 | tail -n 1)"
"$BIN" org rate-limit examples-slow --per-second 0.01 --burst 1 >/dev/null
mkdir -p "$WORK/out"

# capture NAME curl-args...: the body of one answer, as WORK/out/NAME.json.
capture() {
    local name="$1"
    shift
    curl -sS -o "$WORK/out/$name.json" "$@"
}
H=(-H "x-api-key: $KEY")
capture verify_identity "${H[@]}" -F "documentImage=@$DOC" -F "faceImage=@$FACE_A" "$URL/v1/identity/verify"
capture scan_document "${H[@]}" -F "documentImage=@$DOC" "$URL/v1/document/scan"
capture detect_faces "${H[@]}" -F "image=@$FACE_A" "$URL/v1/face/detect"
capture compare_faces "${H[@]}" -F "sourceImage=@$FACE_A" -F "targetImage=@$FACE_B" "$URL/v1/face/compare"

capture 400-invalid_document_type "${H[@]}" -F "documentImage=@$DOC" -F documentType=visa "$URL/v1/document/scan"
capture 400-unsupported_image_format "${H[@]}" -F "image=@$ROOT/README.md;type=application/octet-stream" "$URL/v1/face/detect"
capture 400-missing_field "${H[@]}" -H 'content-type: application/json' -d '{}' "$URL/v1/face/detect"
capture 400-unknown_field "${H[@]}" -H 'content-type: application/json' -d '{"imag":"aGk="}' "$URL/v1/face/detect"
capture 400-invalid_base64 "${H[@]}" -H 'content-type: application/json' -d '{"image":"not base64!"}' "$URL/v1/face/detect"
capture 400-invalid_idempotency_key "${H[@]}" -H 'Idempotency-Key: has space' -F "image=@$FACE_A" "$URL/v1/face/detect"
capture 401-unauthorized -F "image=@$FACE_A" "$URL/v1/face/detect"
capture 402-insufficient_tokens -H "x-api-key: $POOR" -F "image=@$FACE_A" "$URL/v1/face/detect"
capture 403-s3_key_forbidden "${H[@]}" -F "image=s3://" "$URL/v1/face/detect"
# 409: the same key while the first request still runs.
curl -sS -o /dev/null "${H[@]}" -H 'Idempotency-Key: examples-409' -F "documentImage=@$DOC" -F "faceImage=@$FACE_A" \
    "$URL/v1/identity/verify" &
FIRST=$!
sleep 0.3
capture 409-idempotency_in_progress "${H[@]}" -H 'Idempotency-Key: examples-409' -F "documentImage=@$DOC" \
    -F "faceImage=@$FACE_A" "$URL/v1/identity/verify"
wait "$FIRST"
# 422: the same key with another image.
capture first "${H[@]}" -H 'Idempotency-Key: examples-422' -F "image=@$FACE_A" "$URL/v1/face/detect"
capture 422-idempotency_key_reused "${H[@]}" -H 'Idempotency-Key: examples-422' -F "image=@$FACE_B" "$URL/v1/face/detect"
capture first "${H[@]/$KEY/$SLOW}" -F "image=@$FACE_A" "$URL/v1/face/detect"
capture 429-rate_limited "${H[@]/$KEY/$SLOW}" -F "image=@$FACE_A" "$URL/v1/face/detect"

python3 - "$WORK/out" "$ROOT/src/http/openapi_examples.json" <<'PY'
import json, pathlib, sys
out, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
summaries = {
    "verify_identity": "ICAO 9303 specimen passport and a selfie of someone else",
    "scan_document": "ICAO 9303 specimen passport (TD3 MRZ)",
    "detect_faces": "a selfie",
    "compare_faces": "two photos",
}
doc = {"errors": {}}
for name, summary in summaries.items():
    doc[name] = {"200": {name: {"summary": summary, "value": json.loads((out / f"{name}.json").read_text())}}}
for path in sorted(out.glob("[0-9]*.json")):
    status, code = path.stem.split("-", 1)
    body = json.loads(path.read_text())
    if body.get("error", {}).get("code") != code:
        sys.exit(f"{path.name}: expected code {code}, got {body}")
    doc["errors"].setdefault(status, {})[code] = {"summary": code, "value": body}
target.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
print(f"wrote {target}")
PY
