"""Reference SFace embeddings from OpenCV's own FaceRecognizerSF, for crates/face/tests/sface.rs.

For each face: YuNet landmarks (OpenCV's FaceDetectorYN, same model file as idverify), OpenCV's
alignCrop (5-point similarity onto the 112 px template, bilinear warp) and feature(). The fixture
keeps the landmarks, the aligned crop's mean and the 128 feature values, so the Rust test checks
alignment and embedding from the same landmarks without depending on detection details.

Faces: a few LFW dev images, read from ../shared at test time and never copied (only their paths
and numbers are in the fixture), and one synthetic image drawn here from a fixed seed and
committed as crates/face/tests/fixtures/sface_synthetic.png (no person in it; the network still
gives a deterministic embedding, which is all the comparison needs).

Needs opencv-python(-headless) and numpy (pip install opencv-python-headless into any venv); the
model is OpenCV Zoo's original file (not the initializer-only copy), to compare against the source.

Usage: make_sface_reference.py SHARED_DATA_DIR MODELS_DIR ORIGINAL_SFACE.onnx OUT_DIR
"""

import json
import sys

import cv2
import numpy as np

LFW = [
    "lfw/dev/Abel_Pacheco/Abel_Pacheco_0001.jpg",
    "lfw/dev/Abel_Pacheco/Abel_Pacheco_0004.jpg",
    "lfw/dev/Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg",
]


def synthetic_face() -> tuple[np.ndarray, np.ndarray]:
    """A drawn face-like pattern, tilted, plus the landmarks it was drawn around (BGR image)."""
    rng = np.random.default_rng(112)
    h, w = 220, 200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([90 + 40 * np.sin(xx / 17.0), 110 + 30 * np.cos(yy / 13.0), 140 + 0.3 * xx], -1)
    img += rng.normal(0, 6, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.ellipse(img, (100, 115), (62, 82), 0, 0, 360, (120, 160, 205), -1)
    lm = np.array([[78, 95], [124, 93], [101, 122], [83, 148], [120, 147]], np.float32)
    for x, y in lm[:2]:
        cv2.ellipse(img, (int(x), int(y)), (11, 6), 0, 0, 360, (40, 30, 30), -1)
    cv2.ellipse(img, (101, 148), (20, 6), 0, 0, 360, (60, 60, 150), -1)
    cv2.line(img, (101, 100), (99, 124), (90, 120, 170), 3)
    # Tilt by 8 degrees so the similarity transform has a rotation to undo.
    m = cv2.getRotationMatrix2D((100, 110), 8, 1.0)
    img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    lm = (np.hstack([lm, np.ones((5, 1), np.float32)]) @ m.T).astype(np.float32)
    return img, lm


def reference(recognizer, image_bgr: np.ndarray, landmarks: np.ndarray) -> dict:
    face = np.zeros((1, 15), np.float32)
    face[0, 4:14] = landmarks.reshape(-1)
    aligned = recognizer.alignCrop(image_bgr, face)
    feature = recognizer.feature(aligned).reshape(-1)
    return {
        "landmarks": landmarks.astype(float).round(4).tolist(),
        "cropMean": float(aligned.astype(np.float64).mean()),
        "feature": [float(v) for v in feature],
    }


def main(shared: str, models: str, sface: str, out_dir: str) -> None:
    recognizer = cv2.FaceRecognizerSF.create(sface, "")
    detector = cv2.FaceDetectorYN.create(f"{models}/face_detection_yunet_2023mar.onnx", "", (320, 320), 0.6)
    faces = []
    for rel in LFW:
        img = cv2.imread(f"{shared}/{rel}")
        detector.setInputSize((img.shape[1], img.shape[0]))
        _, found = detector.detect(img)
        best = max(found, key=lambda f: f[2] * f[3])
        landmarks = best[4:14].reshape(5, 2)
        faces.append({"image": rel, "shared": True, **reference(recognizer, img, landmarks)})
    img, landmarks = synthetic_face()
    cv2.imwrite(f"{out_dir}/sface_synthetic.png", img)
    faces.append({"image": "sface_synthetic.png", "shared": False, **reference(recognizer, img, landmarks)})
    fixture = {"generator": f"make_sface_reference.py, OpenCV {cv2.__version__}", "faces": faces}
    with open(f"{out_dir}/sface_reference.json", "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
