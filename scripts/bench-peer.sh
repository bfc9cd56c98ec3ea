#!/usr/bin/env bash
# The same document + selfie pairs through the Python peer (PassportEye + face_recognition) and
# through idverify (release binary, embedded defaults), one request at a time, same machine, same
# run. Prints both medians and their ratio; last line: peer_ms=… idverify_ms=… ratio=…
#
#   scripts/bench-peer.sh [--repeat N] [--no-build]      (default 3 repetitions of 4 pairs)
#
# The peer lives in a venv under ${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}/peer-venv.
# dlib comes from a wheel already built on this machine (pip's wheel cache, or /tmp) when there is
# one, else from PyPI's prebuilt dlib-bin; PEER_DLIB=source compiles it (tens of minutes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPEAT=3
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeat) REPEAT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 && "$REPEAT" -le 20 ]] || { echo "--repeat must be 1..20" >&2; exit 2; }

DATA="${IDVERIFY_SHARED_DATA:-$ROOT/../shared/data}"
M="$DATA/mrz_docs/dev"
F="$DATA/faces/dev"
# Phone-size and smaller document photos, each with a ~1 MP selfie (the first pair is the one
# scripts/bench-load.sh uses).
PAIRS=(
    "$M/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-lux.jpg	$F/barack_obama/ageitgey-face_recognition__examples_obama.jpg"
    "$M/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-bdr.jpg	$F/amy_adams/cmusatyalab-openface__images_examples_adams.jpg"
    "$M/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-uto.jpg	$F/scarlett_johansson/serengil-deepface__tests_unit_dataset_img48.jpg"
    "$M/sivakumar-mahalingam-fastmrz__data_td3.jpg	$F/alex_lacamoire/ageitgey-face_recognition__examples_knn_examples_train_alex_lacamoire_img1.jpg"
)
for p in "${PAIRS[@]}"; do
    for f in ${p//	/ }; do [[ -f "$f" ]] || { echo "missing image: $f (set IDVERIFY_SHARED_DATA)" >&2; exit 1; }; done
done

# --- Peer environment (idempotent) --------------------------------------------------------
need=()
command -v tesseract >/dev/null || need+=(tesseract-ocr)
command -v curl >/dev/null || need+=(curl)
python3 -c 'import venv' 2>/dev/null || need+=(python3-venv)
if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
VENV="$CACHE/peer-venv"
PY="$VENV/bin/python"
if ! "$PY" -c 'import face_recognition, passporteye' 2>/dev/null; then
    mkdir -p "$CACHE"
    [[ -x "$PY" ]] || python3 -m venv "$VENV"
    # Reuse a dlib wheel built earlier on this machine for the same Python, if any.
    tag="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
    wheel="$(find "$HOME/.cache/pip" /tmp -maxdepth 8 -name "dlib-*-$tag-$tag-linux_x86_64.whl" 2>/dev/null | head -n 1 || true)"
    if [[ -n "$wheel" ]]; then
        "$VENV/bin/pip" install -q "$wheel"
        "$VENV/bin/pip" install -q passporteye face_recognition
    elif [[ "${PEER_DLIB:-}" == source ]]; then
        # dlib compiled from source by pip (tens of minutes on 2 cores).
        command -v cmake >/dev/null && command -v g++ >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null; }
        "$VENV/bin/pip" install -q passporteye face_recognition
    else
        # The same dlib prebuilt on PyPI (dlib-bin); face_recognition itself asks for the
        # source package `dlib`, so it is installed without its dependencies, which come first.
        "$VENV/bin/pip" install -q dlib-bin passporteye face_recognition_models Click Pillow numpy
        "$VENV/bin/pip" install -q --no-deps face_recognition
    fi
fi

# --- idverify server -----------------------------------------------------------------------
# shellcheck source=scripts/lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
prepare_release "$ROOT" "$BUILD"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    stop_idverify
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

printf '%s\n' "${PAIRS[@]}" >"$WORK/pairs.tsv"
export IDVERIFY_MODELS_DIR="$MODELS"
export IDVERIFY_LOG_LEVEL="${IDVERIFY_LOG_LEVEL:-warn}"
start_idverify "$BIN" "$WORK" peerbench 1000000 1000
printf '%s\n' "$KEY" >"$WORK/key"

# --- Runs ----------------------------------------------------------------------------------
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up request (first inference of each ONNX session allocates), not timed.
"$PY" "$ROOT/scripts/peer/peer_bench.py" idverify --pairs "$WORK/pairs.tsv" --repeat 1 --url "$URL" \
    --key-file "$WORK/key" >/dev/null
"$PY" "$ROOT/scripts/peer/peer_bench.py" idverify --pairs "$WORK/pairs.tsv" --repeat "$REPEAT" --url "$URL" \
    --key-file "$WORK/key" | tee "$WORK/idverify.out"
echo "load between: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$ROOT/scripts/peer/peer_bench.py" peer --pairs "$WORK/pairs.tsv" --repeat "$REPEAT" | tee "$WORK/peer.out"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

ours="$(sed -n 's/.*median_ms=\([0-9]*\).*/\1/p' "$WORK/idverify.out" | tail -n 1)"
peer="$(sed -n 's/.*median_ms=\([0-9]*\).*/\1/p' "$WORK/peer.out" | tail -n 1)"
ratio="$(python3 -c "print(f'{$peer / max($ours, 1):.1f}')")"
echo "peer_ms=$peer idverify_ms=$ours ratio=$ratio"
