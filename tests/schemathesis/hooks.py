"""schemathesis hooks for the idverify run (scripts/schemathesis.sh).

JSON Schema can say "a non-empty string" or "binary data", not "the bytes of a decodable image",
so a positive case (one schemathesis generated to fit the document) gets real images in its image
fields just before it is sent; negative cases go out as generated. A positive case also gets an
Idempotency-Key of its own: the same key on two different generated bodies is rightly refused with
422 `idempotency_key_reused`, which is the server keeping its promise, not refusing valid data.
"""

import base64
import os
import uuid

import schemathesis

IMAGES = {
    "documentImage": os.environ["IDVERIFY_CONTRACT_DOC"],
    "faceImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "sourceImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "targetImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "image": os.environ["IDVERIFY_CONTRACT_FACE"],
}
BYTES = {path: open(path, "rb").read() for path in set(IMAGES.values())}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if isinstance(case.body, dict):
        multipart = (case.media_type or "").startswith("multipart/")
        for name in IMAGES.keys() & case.body.keys():
            data = BYTES[IMAGES[name]]
            case.body[name] = data if multipart else base64.b64encode(data).decode()
    if case.headers:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = f"schemathesis-{uuid.uuid4()}"
