#!/usr/bin/env bash
# Generated clients against the real server with the real models: starts `idverify serve`,
# generates a Python client (openapi-python-client) and TypeScript types (openapi-typescript, for
# the openapi-fetch client) from the served /openapi.json into a scratch dir, type-checks the
# TypeScript, and runs the two user programs examples/python/verify.py and
# examples/typescript/verify.ts as they are (no patch to generated code). Fails on any error.
# Usage: scripts/contract-clients.sh PATH/TO/idverify
set -euo pipefail

BIN="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
WORK="$(mktemp -d /tmp/idverify-clients.XXXXXX)"
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
echo "generators: openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION; openapi-typescript $OPENAPI_TYPESCRIPT_VERSION with openapi-fetch $OPENAPI_FETCH_VERSION (typescript $TYPESCRIPT_VERSION, tsx $TSX_VERSION)"
contract_images "$WORK"
start_idverify "$BIN" "$WORK" clients-org 100 100
export IDVERIFY_URL="$URL" IDVERIFY_API_KEY="$KEY"
curl -fsS "$URL/openapi.json" -o "$WORK/openapi.json"

echo "--- Python: openapi-python-client"
cat >"$WORK/python-client.yaml" <<'YAML'
project_name_override: idverify-client
package_name_override: idverify_client
YAML
(cd "$WORK" && PATH="$(dirname "$CONTRACT_PY"):$PATH" "$CONTRACT_PY" -m openapi_python_client generate --path openapi.json --meta none \
    --config python-client.yaml --output-path "$WORK/python/idverify_client" >"$WORK/python-generate.log" 2>&1) \
    || { cat "$WORK/python-generate.log"; exit 1; }
if grep -qi "warning" "$WORK/python-generate.log"; then
    cat "$WORK/python-generate.log"
    echo "FAIL: openapi-python-client warned about the document"
    exit 1
fi
PYTHONPATH="$WORK/python" "$CONTRACT_PY" "$ROOT/examples/python/verify.py" "$DOC" "$FACE_A" "$FACE_B"

echo "--- TypeScript: openapi-typescript types + openapi-fetch"
mkdir -p "$WORK/ts"
ln -s "$CONTRACT_NODE/node_modules" "$WORK/ts/node_modules"
printf '{"type": "module"}\n' >"$WORK/ts/package.json"
# The generator script and the user program run as written, beside the packages they import.
cp "$ROOT/scripts/lib/openapi-typescript.mjs" "$ROOT/examples/typescript/verify.ts" "$WORK/ts/"
(cd "$WORK/ts" && node openapi-typescript.mjs "$URL/openapi.json" schema.d.ts)
cat >"$WORK/ts/tsconfig.json" <<'JSON'
{"compilerOptions": {"target": "es2022", "module": "esnext", "moduleResolution": "bundler", "strict": true,
  "noEmit": true, "skipLibCheck": false, "types": ["node"], "lib": ["es2022", "dom"]}, "include": ["*.ts"]}
JSON
(cd "$WORK/ts" && node_modules/.bin/tsc -p tsconfig.json) || { echo "FAIL: the TypeScript example does not type-check"; exit 1; }
echo "tsc: verify.ts and the generated types type-check (strict)"
(cd "$WORK/ts" && node_modules/.bin/tsx verify.ts "$DOC" "$FACE_A" "$FACE_B")

echo "clients: 2 passed, 0 failed"
