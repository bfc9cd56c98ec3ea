"""Verify an identity with a Python client generated from the server's OpenAPI document.

    pip install openapi-python-client==0.29.1
    openapi-python-client generate --url http://127.0.0.1:8080/openapi.json --meta none \
        --output-path idverify_client
    IDVERIFY_URL=http://127.0.0.1:8080 IDVERIFY_API_KEY=idv_... python verify.py passport.jpg selfie.jpg photo.jpg

scripts/contract-clients.sh runs this file against the real server (`make test`).
"""

import base64
import io
import os
import sys
from pathlib import Path

from idverify_client import AuthenticatedClient
from idverify_client.api.face import compare_faces
from idverify_client.api.identity import verify_identity
from idverify_client.models import (
    BadRequestError,
    BadRequestErrorCode,
    CompareMultipartRequest,
    CompareResponse,
    RequestedDocumentType,
    UnauthorizedError,
    VerifyMultipartRequest,
    VerifyRequest,
    VerifyResponse,
)
from idverify_client.types import File

url, key = os.environ["IDVERIFY_URL"], os.environ["IDVERIFY_API_KEY"]
document, selfie, photo = (Path(p) for p in sys.argv[1:4])
client = AuthenticatedClient(base_url=url, token=key, prefix="", auth_header_name="x-api-key")


def upload(path: Path) -> File:
    """An image file as a binary multipart part."""
    return File(payload=io.BytesIO(path.read_bytes()), file_name=path.name)


def expect(result, kind):
    if not isinstance(result, kind):
        sys.exit(f"expected {kind.__name__}, got {result!r}")
    return result


# 1. Verify, the two images as binary multipart parts read from files.
body = VerifyMultipartRequest(
    document_image=upload(document), face_image=upload(selfie), document_type=RequestedDocumentType.AUTO
)
answer = expect(verify_identity.sync(client=client, body=body), VerifyResponse)
print(
    f"verify (multipart): verified={answer.verified} overall={answer.overall_confidence} "
    f"document={answer.document.document_type} reasons={[r.value for r in answer.reasons]}"
)

# 2. The same with the images as base64 in JSON.
body = VerifyRequest(
    document_image=base64.b64encode(document.read_bytes()).decode(),
    face_image=base64.b64encode(selfie.read_bytes()).decode(),
)
json_answer = expect(verify_identity.sync(client=client, body=body), VerifyResponse)
assert json_answer.verified == answer.verified, "multipart and JSON disagree"
print(f"verify (JSON base64): verified={json_answer.verified} overall={json_answer.overall_confidence}")

# 3. Compare two faces.
match = expect(
    compare_faces.sync(client=client, body=CompareMultipartRequest(source_image=upload(selfie), target_image=upload(photo))),
    CompareResponse,
)
print(f"compare: isMatch={match.face_match.is_match} confidence={match.face_match.confidence}")

# 4. Errors are typed: a wrong key is 401 ...
stranger = AuthenticatedClient(base_url=url, token="idv_not_a_key", prefix="", auth_header_name="x-api-key")
denied = expect(verify_identity.sync(client=stranger, body=body), UnauthorizedError)
print(f"401: {denied.error.code.value}")

# ... and a file that is not an image is 400 with a code from the enum.
note = File(payload=io.BytesIO(b"not an image"), file_name="note.txt")
refused = expect(
    verify_identity.sync(client=client, body=VerifyMultipartRequest(document_image=upload(document), face_image=note)),
    BadRequestError,
)
assert refused.error.code == BadRequestErrorCode.UNSUPPORTED_IMAGE_FORMAT, refused
print(f"400: {refused.error.code.value}: {refused.error.message}")
