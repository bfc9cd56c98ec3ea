#!/usr/bin/env bash
# schemathesis against the real server with the real models: every check (positive data
# acceptance included), examples + coverage + fuzzing phases, bounded by --max-examples (50: about a
# minute on 2 cores). 0 failures or it fails. Positive cases carry real images
# (tests/schemathesis/hooks.py says why). POST /v1/uploads is left out: without S3 configured it
# answers 400 s3_not_configured to every request (the curl smoke test covers it with S3).
# Usage: scripts/schemathesis.sh PATH/TO/idverify [MAX_EXAMPLES]
set -euo pipefail

BIN="$(realpath "$1")"
MAX_EXAMPLES="${2:-50}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
WORK="$(mktemp -d /tmp/idverify-schemathesis.XXXXXX)"
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

contract_tools "$CACHE"
contract_images "$WORK"
# Enough tokens and rate for the whole run: a 402 or 429 would be the test's budget, not the API.
start_idverify "$BIN" "$WORK" schemathesis-org 1000000 1000
export IDVERIFY_CONTRACT_DOC="$DOC" IDVERIFY_CONTRACT_FACE="$FACE_A"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$ROOT/tests/schemathesis"
echo "schemathesis $SCHEMATHESIS_VERSION, --max-examples $MAX_EXAMPLES"
set +e
(cd "$WORK" && "$(dirname "$CONTRACT_PY")/schemathesis" run "$URL/openapi.json" --url "$URL" \
    --checks all --mode all --phases examples,coverage,fuzzing --max-examples "$MAX_EXAMPLES" \
    --exclude-path /v1/uploads --workers 1 --seed 1 --generation-database none -H "x-api-key: $KEY" --no-color \
    >"$WORK/schemathesis.log" 2>&1)
status=$?
set -e
if [[ $status -ne 0 ]]; then
    grep -a -E "^_{5,} |^- ST|Invalid component|^\[[0-9]{3}\]" "$WORK/schemathesis.log" | cut -c1-300
    sed -n '/= SUMMARY =/,$p' "$WORK/schemathesis.log"
    echo "FAIL: schemathesis exit $status"
    exit 1
fi
# The summary only: failure details hold whole image bodies.
sed -n '/= SUMMARY =/,$p' "$WORK/schemathesis.log"
passed="$(grep -a -oE '[0-9]+ passed' "$WORK/schemathesis.log" | tail -n 1 | cut -d' ' -f1)"
echo "schemathesis: ${passed:-0} passed, 0 failed"
