# Sourced by scripts/contract-clients.sh and scripts/schemathesis.sh: installs the pinned client
# generators and schemathesis once under $CACHE (PyPI and npm only), and sets
#   CONTRACT_PY    the Python of a venv with openapi-python-client and schemathesis
#   CONTRACT_NODE  a node_modules root with openapi-typescript, openapi-fetch, typescript, tsx and
#                  @types/node
# Bump a version here (and in README "Generated clients") to move to a newer generator.

OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
SCHEMATHESIS_VERSION=4.32.5
# TypeScript: openapi-typescript + openapi-fetch. @hey-api/openapi-ts (0.95.0, the newest that runs
# on node 20) types an operation's body from its JSON media type whenever it has one, so its SDK
# cannot send the multipart form of verify, scan, detect or compare.
OPENAPI_TYPESCRIPT_VERSION=7.13.0
OPENAPI_FETCH_VERSION=0.17.0
TYPESCRIPT_VERSION=5.9.3
TSX_VERSION=4.23.15
TYPES_NODE_VERSION=20.19.43

contract_tools() {
    local cache="$1"
    local venv="$cache/venv-contract" node="$cache/node-contract"
    local py_pins="openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION schemathesis==$SCHEMATHESIS_VERSION"
    if [[ "$(cat "$venv/.pins" 2>/dev/null)" != "$py_pins" ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install --quiet $py_pins
        echo "$py_pins" >"$venv/.pins"
    fi
    local node_pins="openapi-typescript@$OPENAPI_TYPESCRIPT_VERSION openapi-fetch@$OPENAPI_FETCH_VERSION"
    node_pins+=" typescript@$TYPESCRIPT_VERSION tsx@$TSX_VERSION @types/node@$TYPES_NODE_VERSION"
    if [[ "$(cat "$node/.pins" 2>/dev/null)" != "$node_pins" ]]; then
        rm -rf "$node"
        mkdir -p "$node"
        printf '{"private": true}\n' >"$node/package.json"
        # shellcheck disable=SC2086
        (cd "$node" && npm install --silent --no-audit --no-fund --save-exact $node_pins)
        echo "$node_pins" >"$node/.pins"
    fi
    CONTRACT_PY="$venv/bin/python"
    CONTRACT_NODE="$node"
}

# contract_images WORK: DOC, FACE_A, FACE_B from ../shared/data when present (the ICAO specimen and
# a dev face pair, as tests/curl/smoke.sh), else a generated PNG (no face, no document: the
# answers are then 200 with in-band block errors, which is all the contract checks need).
contract_images() {
    local work="$1" shared
    shared="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/data"
    if [[ -d "$shared" ]]; then
        DOC="$shared/mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png"
        FACE_A="$shared/faces/dev/$(sed -n '2p' "$shared/faces/dev/pairs.csv" | cut -d, -f1)"
        FACE_B="$shared/faces/dev/$(sed -n '2p' "$shared/faces/dev/pairs.csv" | cut -d, -f2)"
    else
        echo "NOTE: ../shared/data absent: using a generated PNG (no face, no document) for every image"
        python3 - "$work/generated.png" <<'PY'
import sys, zlib, struct
def png(path, w, h):
    raw = b''.join(b'\x00' + bytes(v for x in range(w) for v in ((x * 7) % 256, (y * 5) % 256, 128)) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
png(sys.argv[1], 64, 48)
PY
        DOC="$work/generated.png"
        FACE_A="$work/generated.png"
        FACE_B="$work/generated.png"
    fi
}
