#!/usr/bin/env python3
"""Peer comparison: dlib's own pipeline (`face_recognition`: HOG detector, 5-point alignment,
ResNet) on a pairs file (`img_a,img_b,same`, paths relative to the csv). Prints per-failure file
names and aggregate figures only.

Usage: peer_face_recognition.py PAIRS.csv [THRESHOLD=0.6]
"""
import csv
import os
import statistics
import sys
import time

import face_recognition
import numpy as np


def main():
    pairs_path = sys.argv[1]
    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 0.6
    base = os.path.dirname(pairs_path)
    with open(pairs_path) as f:
        rows = list(csv.DictReader(f))
    images = sorted({r["img_a"] for r in rows} | {r["img_b"] for r in rows})
    enc, times = {}, []
    for rel in images:
        img = face_recognition.load_image_file(os.path.join(base, rel))
        start = time.perf_counter()
        boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
        if boxes:
            box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            enc[rel] = face_recognition.face_encodings(img, [box], num_jitters=1, model="small")[0]
        else:
            print(f"detect_fail {rel}")
        times.append((time.perf_counter() - start) * 1000)
    dists = []
    for r in rows:
        a, b = enc.get(r["img_a"]), enc.get(r["img_b"])
        d = float(np.linalg.norm(a - b)) if a is not None and b is not None else float("inf")
        dists.append((d, r["same"] in ("1", "true")))
    acc = sum((d <= threshold) == s for d, s in dists) / len(dists)
    cands = sorted({d for d, _ in dists if np.isfinite(d)})
    best = max(sum((d <= t) == s for d, s in dists) / len(dists) for t in cands + [0.0])
    print(f"pairs: {len(dists)}, images: {len(images)}, detect_fail: {len(images) - len(enc)}")
    print(f"accuracy at {threshold}: {100 * acc:.2f} %, best accuracy: {100 * best:.2f} %")
    print(f"median detect+embed: {statistics.median(times):.0f} ms per image (HOG, upsample 1)")


if __name__ == "__main__":
    main()
