"""Times document + selfie pairs through the Python peer pipeline or through idverify.

  peer_bench.py peer --pairs PAIRS.tsv --repeat N
  peer_bench.py idverify --pairs PAIRS.tsv --repeat N --url URL --key-file FILE

PAIRS.tsv: one `document_path<TAB>selfie_path` per line. The peer does what idverify's verify
does, with the usual Python tools: PassportEye (Tesseract) reads the MRZ, face_recognition (dlib
HOG detector + ResNet embedding) finds the selfie face and the document portrait and compares
them. Both modes time one whole pair per request, from file bytes to answer, sequentially (c=1).
Prints one line per run and then `median_ms=…`.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request
import uuid
import warnings

# PassportEye calls scikit-image APIs that warn on every image; the timings are what matter here.
warnings.filterwarnings("ignore", category=FutureWarning)


def load_pairs(path):
    pairs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                doc, face = line.split("\t")
                pairs.append((doc, face))
    return pairs


def run_peer(doc, face):
    import face_recognition
    from passporteye import read_mrz

    mrz = read_mrz(doc)
    selfie = face_recognition.load_image_file(face)
    selfie_boxes = face_recognition.face_locations(selfie)
    page = face_recognition.load_image_file(doc)
    page_boxes = face_recognition.face_locations(page)
    distance = None
    if selfie_boxes and page_boxes:
        a = face_recognition.face_encodings(selfie, selfie_boxes[:1])[0]
        b = face_recognition.face_encodings(page, page_boxes[:1])[0]
        distance = float(face_recognition.face_distance([b], a)[0])
    return (
        f"mrz_valid={bool(mrz and mrz.valid)} selfie_faces={len(selfie_boxes)} "
        f"portrait_faces={len(page_boxes)} distance={distance if distance is None else round(distance, 3)}"
    )


def multipart(fields):
    boundary = "peerbench" + uuid.uuid4().hex
    out = bytearray()
    for name, path in fields:
        with open(path, "rb") as f:
            data = f.read()
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return boundary, bytes(out)


def run_idverify(url, key, doc, face):
    boundary, body = multipart([("documentImage", doc), ("faceImage", face)])
    req = urllib.request.Request(
        url + "/v1/identity/verify",
        data=body,
        method="POST",
        headers={"x-api-key": key, "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        r = json.load(resp)
    d, f, m = r.get("document") or {}, r.get("faceDetection") or {}, r.get("faceMatch") or {}
    # Same meaning as PassportEye's `valid`: an MRZ was read and its check digits hold (expiry of
    # the specimen documents is not part of it).
    digits = [c.get("passed") for c in d.get("checks") or [] if "check_digit" in (c.get("name") or "")]
    valid = (d.get("source") or "").startswith("mrz") and bool(digits) and all(digits)
    return (
        f"mrz_valid={valid} selfie_faces={f.get('faceCount')} "
        f"compared={m.get('error') is None} distance={m.get('distance')}"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["peer", "idverify"])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url")
    ap.add_argument("--key-file")
    args = ap.parse_args()
    pairs = load_pairs(args.pairs)
    key = open(args.key_file).read().strip() if args.key_file else None
    if args.mode == "idverify" and not (args.url and key):
        sys.exit("idverify mode needs --url and --key-file")
    if args.mode == "peer":
        # Import cost (dlib models load lazily at import) is paid once, outside the timings.
        import face_recognition  # noqa: F401
        import passporteye  # noqa: F401

    times = []
    for rep in range(args.repeat):
        for doc, face in pairs:
            t0 = time.perf_counter()
            if args.mode == "peer":
                summary = run_peer(doc, face)
            else:
                summary = run_idverify(args.url, key, doc, face)
            ms = (time.perf_counter() - t0) * 1000
            times.append(ms)
            if rep == 0:
                print(f"{args.mode} {doc.rsplit('/', 1)[-1]} + {face.rsplit('/', 1)[-1]}: {ms:.0f} ms {summary}")
    print(
        f"{args.mode} runs={len(times)} min_ms={min(times):.0f} max_ms={max(times):.0f} "
        f"median_ms={statistics.median(times):.0f}"
    )


if __name__ == "__main__":
    main()
