"""schemathesis hooks for the idverify run (scripts/schemathesis.sh).

JSON Schema can say "a non-empty string" or "binary data", not "the bytes of a decodable image",
so every image value that fits the schema (a binary part, a non-empty string) is replaced by a real
image: as the fuzzing phase generates a body (`map_body`), and in the coverage phase, which builds
its cases without that hook (its binary parts are a 1x1 PNG, below the server's minimum size),
just before a positive case is sent (`before_call`). schemathesis re-checks a body changed there
and cannot check one holding binary, so after swapping a binary part the body is recorded as
checked (through schemathesis 4.32's case metadata; the version is pinned). A value that does not
fit is left as generated, so negative cases stay negative.

Every Idempotency-Key that fits its pattern is made unique: the same key on two different
generated bodies is rightly refused with 422 `idempotency_key_reused`, which is the server keeping
its promise, not refusing valid data.
"""

import base64
import os
import re
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.serialization import Binary

IMAGES = {
    "documentImage": os.environ["IDVERIFY_CONTRACT_DOC"],
    "faceImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "sourceImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "targetImage": os.environ["IDVERIFY_CONTRACT_FACE"],
    "image": os.environ["IDVERIFY_CONTRACT_FACE"],
}
BYTES = {path: open(path, "rb").read() for path in set(IMAGES.values())}
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7E]{1,255}")


def real_images(body, binary):
    if isinstance(body, dict):
        for name in IMAGES.keys() & body.keys():
            data = BYTES[IMAGES[name]]
            value = body[name]
            if isinstance(value, (Binary, bytes)):
                if binary:
                    body[name] = Binary(data)
            elif isinstance(value, str) and value:
                body[name] = base64.b64encode(data).decode()
    return body


@schemathesis.hook
def map_body(ctx, body):
    return real_images(body, binary=True)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = case.meta  # reading `case.meta` re-checks edited parts: read it before editing
    if meta is not None and meta.generation.mode.is_positive:
        real_images(case.body, binary=True)
        unique_keys(case.headers)
        if ParameterLocation.BODY in meta.components:
            meta.update_validated_hash(ParameterLocation.BODY, case._hash_container(case.body))


def unique_keys(headers):
    if headers:
        for name, value in list(headers.items()):
            if name.lower() == "idempotency-key" and isinstance(value, str) and IDEMPOTENCY_KEY.fullmatch(value):
                headers[name] = f"schemathesis-{uuid.uuid4()}"
    return headers


@schemathesis.hook
def map_headers(ctx, headers):
    return unique_keys(headers)
