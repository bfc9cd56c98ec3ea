#!/usr/bin/env python3
"""Hostile-input generator for a running idverify server (driven by scripts/hostile-inputs.sh).

Sends a bounded number of generated bad requests over raw sockets with bounded concurrency and
checks every answer: no 5xx (503 with Retry-After is counted apart), every error has the
documented body {"error": {"code", "message"}, "requestId"}, and the server's resident memory
(sampled from /proc/PID/status) stays under a bound. Prints a per-category summary and, last,
`requests=N 5xx=N panics=N max_rss_mb=N` (panics are counted by the shell script from the log).

Only 127.0.0.1 is targeted. Needs Pillow (to make valid seed images to mutate).
"""

import argparse
import base64
import io
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

DOCUMENTED_CODES = {
    "invalid_json", "invalid_multipart", "unsupported_content_type", "missing_field", "duplicate_field",
    "unknown_field", "invalid_field", "invalid_base64", "unsupported_image_format", "image_too_large",
    "image_corrupt", "image_dimensions_invalid", "invalid_document_type", "invalid_idempotency_key",
    "body_too_large", "s3_not_configured", "unauthorized", "insufficient_tokens", "s3_key_forbidden",
    "not_found", "method_not_allowed", "idempotency_conflict", "rate_limited", "internal_error",
    "overloaded", "dependency_unavailable", "timeout",
    # Not in the README table but produced by src/http/input.rs when a body cannot be read.
    "invalid_body",
}

ENDPOINTS = {
    "/v1/face/detect": ["image"],
    "/v1/document/scan": ["documentImage"],
    "/v1/face/compare": ["sourceImage", "targetImage"],
    "/v1/identity/verify": ["documentImage", "faceImage"],
}

BOUNDARY = "hostile-boundary-5d0f3c"


# ---------------------------------------------------------------------------------------------
# Images


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int, depth: int = 8, color: int = 2) -> bytes:
    """A PNG that declares width x height with a few bytes of (truncated) pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def png_uniform(width: int, height: int, depth: int, color: int) -> bytes:
    """A real, complete, all-zero PNG: huge bitmap, tiny file (a decompression bomb)."""
    bits_per_pixel = depth * {0: 1, 2: 3, 4: 2, 6: 4}[color]
    row = b"\x00" + b"\x00" * ((width * bits_per_pixel + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = []
    batch = row * 64
    for _ in range(height // 64):
        parts.append(compressor.compress(batch))
    parts.append(compressor.compress(row * (height % 64)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def png_with_chunk_bomb(seed_png: bytes, kind: bytes) -> bytes:
    """A valid small PNG carrying a zTXt/iCCP chunk that inflates to 200 MB."""
    compressor = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    payload = b"".join(compressor.compress(block) for _ in range(200)) + compressor.flush()
    if kind == b"zTXt":
        data = b"Comment\x00\x00" + payload
    else:
        data = b"icc\x00\x00" + payload
    return seed_png[:33] + png_chunk(kind, data) + seed_png[33:]


def jpeg_declaring(width: int, height: int) -> bytes:
    """SOI + a baseline SOF0 declaring width x height + a few bytes: no real scan data."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xda\x00\x0c" + b"\x00" * 16


def webp_vp8l_declaring(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 16
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_vp8x_declaring(width: int, height: int) -> bytes:
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def seed_images(rng: random.Random) -> dict:
    """Small valid images to mutate (generated, never copied from shared data)."""
    seeds = {}
    for size in [(64, 48), (40, 40)]:
        img = Image.new("RGB", size)
        img.putdata([((x * 7 + rng.randrange(16)) % 256, (y * 5) % 256, 128)
                     for y in range(size[1]) for x in range(size[0])])
        tag = f"{size[0]}x{size[1]}"
        seeds[f"png_{tag}"] = encode(img, "PNG")
        seeds[f"jpeg_{tag}"] = encode(img, "JPEG", quality=85)
        seeds[f"jpeg_prog_{tag}"] = encode(img, "JPEG", quality=85, progressive=True)
        seeds[f"webp_lossy_{tag}"] = encode(img, "WEBP", quality=80)
        seeds[f"webp_lossless_{tag}"] = encode(img, "WEBP", lossless=True)
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    choice = rng.randrange(8)
    if choice == 0:  # truncate
        return bytes(b[: rng.randrange(0, len(b))])
    if choice == 1:  # flip a few bytes anywhere
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif choice == 2:  # corrupt the header region (sizes, chunk lengths, markers)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(min(len(b), 64))
            b[i] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    elif choice == 3:  # insert garbage
        i = rng.randrange(len(b))
        b[i:i] = os.urandom(rng.randint(1, 512))
    elif choice == 4:  # delete a slice
        i = rng.randrange(len(b))
        del b[i: i + rng.randint(1, 256)]
    elif choice == 5:  # duplicate a slice
        i = rng.randrange(len(b))
        b[i:i] = b[i: i + rng.randint(1, 256)]
    elif choice == 6:  # keep the magic, random tail
        b = b[:12] + bytearray(os.urandom(rng.randint(0, 2048)))
    else:  # overwrite 32-bit fields with extreme values
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(max(1, len(b) - 4))
            b[i: i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00"])
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# Request building


class Req:
    __slots__ = ("category", "method", "path", "headers", "body", "raw")

    def __init__(self, category, method="POST", path="/v1/face/detect", headers=None, body=b"", raw=None):
        self.category = category
        self.method = method
        self.path = path
        self.headers = headers if headers is not None else []
        self.body = body
        self.raw = raw  # full request bytes, sent as is


def multipart_body(parts, boundary=BOUNDARY) -> bytes:
    """parts: (name, filename or None, bytes, content_type or None)."""
    out = bytearray()
    for name, filename, data, ctype in parts:
        out += f"--{boundary}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


class Builder:
    def __init__(self, key: str, rng: random.Random, valid_png: bytes):
        self.key = key
        self.rng = rng
        self.valid_png = valid_png

    def auth(self):
        return [("x-api-key", self.key)]

    def image_request(self, category, images, path=None, transport=None):
        """One or two image fields carrying `images` (the rest get a valid tiny PNG)."""
        rng = self.rng
        path = path or rng.choice(list(ENDPOINTS))
        names = ENDPOINTS[path]
        transport = transport or rng.choice(["file", "file", "text_b64", "json_b64", "json_dataurl"])
        values = {}
        for i, name in enumerate(names):
            values[name] = images[i] if i < len(images) else self.valid_png
        if rng.random() < 0.5:
            names = list(reversed(names))  # the bad image may be either field
        if transport.startswith("json"):
            obj = {}
            for name in names:
                b64 = base64.b64encode(values[name]).decode()
                obj[name] = ("data:image/png;base64," + b64) if transport == "json_dataurl" else b64
            body = json.dumps(obj).encode()
            return Req(category, path=path, headers=self.auth() + [("content-type", "application/json")], body=body)
        parts = []
        for name in names:
            if transport == "file":
                parts.append((name, "x.bin", values[name], rng.choice([None, "image/jpeg", "application/octet-stream"])))
            else:
                parts.append((name, None, base64.b64encode(values[name]), None))
        return Req(category, path=path,
                   headers=self.auth() + [("content-type", f"multipart/form-data; boundary={BOUNDARY}")],
                   body=multipart_body(parts))

    def json_request(self, category, body: bytes, path="/v1/face/detect", ctype="application/json"):
        return Req(category, path=path, headers=self.auth() + [("content-type", ctype)], body=body)

    def multipart_request(self, category, body: bytes, path="/v1/face/detect", ctype=None):
        ctype = ctype or f"multipart/form-data; boundary={BOUNDARY}"
        return Req(category, path=path, headers=self.auth() + [("content-type", ctype)], body=body)


def bad_base64_values(rng):
    return [
        "", " ", "=", "==", "A", "AB=", "A===", "!!!!", "aGk=aGk=", "a+b-", "a_b/c==", "\u00e9\u00e8\u00ea",
        "data:image/png;base64,", "data:image/png;base64,!!!!", "data:image/png,aGk=", "data:;base64,",
        "data:image/png;base64", "\x00\x01\x02", "aGk=\n\n=", "////", "----", "%%%%", "a" * 5, "YQ",
        "\u202e\u202d", "\ud7ff" * 3, "A" * rng.randint(1, 9) + "=" * rng.randint(1, 5),
        "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \t\r\n!#")
                for _ in range(rng.randint(1, 300))),
        base64.b64encode(os.urandom(rng.randint(1, 400))).decode(),  # valid base64, not an image
        base64.urlsafe_b64encode(b"GIF89a" + os.urandom(100)).decode().rstrip("="),
    ]


def bad_s3_values(rng):
    return [
        "s3://", "s3:///", "s3://bucket", "s3://bucket/", "s3:///key", "s3://bucket/../etc/passwd",
        "s3://idverify/orgs/other-org/uploads/x", "s3://idverify/orgs/../orgs/x/uploads/y",
        "s3://b/" + "k" * 5000, "s3://" + "b" * 300 + "/k", "s3://bucket/key\x00nul", "s3://bucket/\u00e9\u00e8",
        "s3://BUCKET_/key", "s3://bucket/%2e%2e/%2e%2e/x", "s3://bucket//double", "s3://bucket/key?versionId=1",
        "s3://bucket/key#frag", "s3://user:pass@bucket/key", "s3://bucket/key\r\nx-amz-evil: 1", "S3://bucket/key",
        "s3:/bucket/key", "s3:bucket/key", " s3://bucket/key ", "s3://-bucket-/key", "s3://a/b/c/d/e/f/g",
        "s3://" + "".join(rng.choice("abc/._-%\\") for _ in range(rng.randint(1, 80))),
    ]


# ---------------------------------------------------------------------------------------------
# The generator


def generate(key: str, count: int, rng: random.Random):
    seeds = seed_images(rng)
    valid_png = seeds["png_64x48"]
    b = Builder(key, rng, valid_png)
    reqs = []

    # Fixed special images: declared-huge headers, zero and degenerate sizes, bombs, other formats.
    bomb_ok_pixels = png_uniform(7000, 7000, 1, 0)  # 49 Mpx 1-bit gray: under the pixel cap, decodes
    specials = {
        "png_100000x100000_header": png_header_only(100000, 100000),
        "png_0x0": png_header_only(0, 0),
        "png_100000x1": png_uniform(100000, 1, 8, 2),
        "png_1x100000": png_uniform(1, 100000, 8, 2),
        "png_65535x65535_16bit_rgba_header": png_header_only(65535, 65535, 16, 6),
        "png_bomb_10000x10000_zeros": png_uniform(10000, 10000, 8, 0),
        "png_bad_depth": png_header_only(64, 64, 7, 2),
        "png_bad_color": png_header_only(64, 64, 8, 5),
        "png_ztxt_bomb": png_with_chunk_bomb(valid_png, b"zTXt"),
        "png_iccp_bomb": png_with_chunk_bomb(valid_png, b"iCCP"),
        "jpeg_65500x65500_header": jpeg_declaring(65500, 65500),
        "jpeg_0x0_header": jpeg_declaring(0, 0),
        "jpeg_100000x1": jpeg_declaring(65535, 1),
        "webp_vp8l_16384x16384": webp_vp8l_declaring(16384, 16384),
        "webp_vp8x_16Mx16M": webp_vp8x_declaring(1 << 24, 1 << 24),
        "webp_vp8x_1x1": webp_vp8x_declaring(1, 1),
        "gif": b"GIF89a" + os.urandom(64),
        "bmp": b"BM" + os.urandom(64),
        "tiff": b"II*\x00" + os.urandom(64),
        "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "empty": b"",
        "riff_not_webp": b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(16),
        "magic_only_png": b"\x89PNG\r\n\x1a\n",
        "magic_only_jpeg": b"\xff\xd8\xff",
    }
    for name, data in specials.items():
        for _ in range(40):
            reqs.append(b.image_request(f"image_special:{name}", [data]))
    # The within-limit bomb really decodes (49 Mpx): a few only, to bound CPU and memory.
    for _ in range(4):
        reqs.append(b.image_request("image_special:png_bomb_7000x7000_1bit", [bomb_ok_pixels],
                                    path="/v1/face/detect", transport="file"))

    # Bad base64 and bad s3:// references, as JSON strings and multipart text fields.
    good_b64 = base64.b64encode(valid_png).decode()
    for category, values_of, n in (("bad_base64", bad_base64_values, 900), ("bad_s3_ref", bad_s3_values, 700)):
        for _ in range(n):
            value = rng.choice(values_of(rng))
            path = rng.choice(list(ENDPOINTS))
            names = ENDPOINTS[path][:]
            rng.shuffle(names)
            values = {names[0]: value, **{n2: good_b64 for n2 in names[1:]}}
            if rng.random() < 0.5:
                reqs.append(b.json_request(category, json.dumps(values).encode(), path))
            else:
                parts = [(k, None, v.encode("utf-8", "surrogatepass"), None) for k, v in values.items()]
                reqs.append(b.multipart_request(category, multipart_body(parts), path))

    # JSON: invalid, non-object, nested, wrong value types, duplicates, unknown/missing, bad UTF-8.
    json_bodies = [
        b"", b"{", b"}", b"[]", b"null", b"true", b"42", b'"str"', b"{'image': 'x'}", b'{"image":}',
        b'{"image":"aGk="', b'{"image":"aGk="}}', b'{"image":"aGk="} trailing', b"\xef\xbb\xbf{}",
        b'{"image":1}', b'{"image":true}', b'{"image":["aGk="]}', b'{"image":{"b64":"aGk="}}',
        b'{"image":null}', b'{}', b'{"imag":"aGk="}', b'{"image":"aGk=","image":"aGk="}',
        b'{"image":"\xff\xfe"}', b'{"\xff":"x"}', b'{"image":"\\ud800"}', b'{"image":"\\u0000"}',
        b'{"image":1e999999}', b'{"image":NaN}', b'{"image":-}', b"\x00" * 64, os.urandom(256),
        b'{"image":"' + b"\\" * 1001 + b'"}', b'{"' + b"k" * 100000 + b'":"v"}',
        b'{"image":"x","documentType":"passport","extra":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ]
    for depth in (200, 10000, 100000):
        json_bodies.append(b"[" * depth + b"]" * depth)
        json_bodies.append(b'{"a":' * depth + b"1" + b"}" * depth)
        json_bodies.append(b"[" * depth)
    for _ in range(1200):
        path = rng.choice(list(ENDPOINTS) + ["/v1/uploads"])
        reqs.append(b.json_request("json", rng.choice(json_bodies), path))
    # Wrong document types, unknown and missing fields on every route.
    for _ in range(300):
        path = rng.choice(["/v1/document/scan", "/v1/identity/verify"])
        fields = {n: base64.b64encode(valid_png).decode() for n in ENDPOINTS[path]}
        fields["documentType"] = rng.choice(["PASSPORT", "visa", "", " auto", "passport\x00", "\u00e9", "x" * 10000, "1"])
        if fields["documentType"] in ("", " auto"):
            fields.pop(ENDPOINTS[path][0])  # keep the request invalid: missing image
        reqs.append(b.json_request("fields", json.dumps(fields).encode(), path))

    # Multipart: malformed framing, duplicates, missing parts, bad names, bad UTF-8.
    img = valid_png
    mp_cases = [
        (multipart_body([("image", "a.png", img, None), ("image", "b.png", img, None)]), None),
        (multipart_body([("image", None, b"aGk=", None), ("image", None, b"aGk=", None)]), None),
        (multipart_body([]), None),
        (multipart_body([("other", "a.png", img, None)]), None),
        (multipart_body([("", "a.png", img, None)]), None),
        (multipart_body([("image", None, b"\xff\xfe\xfd", None)]), None),
        (multipart_body([("image", "a.png", img, None), ("documentType", "t.txt", b"passport", None)]), None),
        (multipart_body([("image", "a.png", img, None)]).replace(b"--\r\n", b""), None),  # no closing boundary
        (multipart_body([("image", "a.png", img, None)])[:-40], None),  # truncated
        (b"--" + BOUNDARY.encode() + b"\r\n\r\n\r\n", None),
        (b"garbage without boundaries", None),
        (multipart_body([("image", "a.png", img, None)]), "multipart/form-data"),  # no boundary param
        (multipart_body([("image", "a.png", img, None)]), "multipart/form-data; boundary="),
        (multipart_body([("image", "a.png", img, None)]), "multipart/form-data; boundary=wrong"),
        (multipart_body([("image", "a.png", img, None)], "b" * 200), "multipart/form-data; boundary=" + "b" * 200),
        (multipart_body([(f"f{i}", None, b"x", None) for i in range(1000)]), None),
        (multipart_body([("image" * 2000, None, b"x", None)]), None),
        (multipart_body([("image", '"; name="x', img, None)]), None),
        (multipart_body([("image", "a.png", img, "image/png\r\nX-Injected: 1")]), None),
        (multipart_body([("image", "a.png", b"", None)]), None),
        (multipart_body([("image", None, b"", None)]), None),
        (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + BOUNDARY.encode() + b"--\r\n", None),
        (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"image\"\r\n" + b"X-H: 1\r\n" * 2000 + b"\r\nx\r\n--" + BOUNDARY.encode() + b"--\r\n", None),
    ]
    for _ in range(1000):
        body, ctype = rng.choice(mp_cases)
        path = rng.choice(list(ENDPOINTS))
        reqs.append(b.multipart_request("multipart", body, path, ctype))

    # Content types.
    ctypes = ["text/plain", "application/xml", "application/x-www-form-urlencoded", "image/png",
              "application/json; charset=utf-16", "APPLICATION/JSON", "application/jsonp", "multipart/mixed",
              "multipart/form-data\x7f", "", "*/*", "application/octet-stream", "\xe9\xe8"]
    for _ in range(500):
        ct = rng.choice(ctypes + [None])
        headers = b.auth() + ([("content-type", ct)] if ct is not None else [])
        body = rng.choice([b'{"image":"aGk="}', valid_png, b"image=aGk%3D", b""])
        reqs.append(Req("content_type", path=rng.choice(list(ENDPOINTS)), headers=headers, body=body))

    # API keys: missing, empty, wrong, malformed, huge, duplicated, non-UTF-8.
    body = json.dumps({"image": base64.b64encode(valid_png).decode()}).encode()
    keys = [None, "", " ", "wrong", key[:-1], key + "x", key.upper(), "k" * 10000, "\xe9" * 10, key + " ",
            "Bearer " + key, "idv_" + "0" * 60, "\x00"]
    for _ in range(700):
        k = rng.choice(keys + ["dup"])
        headers = [("content-type", "application/json")]
        if k == "dup":
            headers += [("x-api-key", "wrong"), ("x-api-key", key)]
        elif k is not None:
            headers += [("x-api-key", k)]
        reqs.append(Req("auth", path=rng.choice(list(ENDPOINTS) + ["/v1/uploads"]), headers=headers, body=body))

    # Headers: big (within hyper's limits, answered by the app) and too big / too many (refused by
    # the HTTP layer), bad request ids and idempotency keys, invalid bytes.
    for _ in range(500):
        kind = rng.randrange(7)
        headers = b.auth() + [("content-type", "application/json")]
        if kind == 0:
            headers.append(("x-junk", "a" * rng.choice([8000, 60000])))
        elif kind == 1:
            headers.append(("x-request-id", rng.choice(["a" * 10000, "bad id\r", "\u00e9", "../../x", ""])))
        elif kind == 2:
            headers.append(("idempotency-key", rng.choice(["", "k" * 300, "caf\u00e9", "a b", "\x7f"])))
        elif kind == 3:
            headers += [(f"x-h{i}", "1") for i in range(rng.choice([50, 150]))]
        elif kind == 4:
            headers.append(("x-junk", "b" * 1_000_000))
        elif kind == 5:
            headers.append(("x-bin", "\x80\x81\xfe\xff"))
        else:
            headers.append(("idempotency-key", f"idem-{rng.randrange(5)}"))  # replays / conflicts of bad bodies
        reqs.append(Req("headers", path="/v1/face/detect", headers=headers, body=b'{"image":"!!"}'))

    # Methods and paths.
    paths = ["/", "/v1", "/v1/", "/v1/face/detect/", "/v1/../v1/face/detect", "/v1/face/%2e%2e/detect",
             "/" + "a" * 8000, "/v1/face/detect?x=" + "y" * 4000, "/%ff%fe", "/v1/face/detect;x", "//v1/face/detect",
             "/healthz/..", "/metrics?format=json"]
    for _ in range(400):
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "HEAD", "TRACE", "FOO"])
        path = rng.choice(paths + list(ENDPOINTS))
        reqs.append(Req("method_path", method=method, path=path, headers=b.auth(), body=b""))

    # Protocol-level garbage (answered by the HTTP layer, if at all).
    raws = [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nx-api-key: " + key.encode()
        + b"\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST /v1/face/detect HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(64),  # a TLS ClientHello
    ]
    for _ in range(200):
        reqs.append(Req("protocol", raw=rng.choice(raws)))

    # Oversized bodies: a few, they are big.
    big_b64 = "A" * 21_000_000
    for _ in range(3):
        reqs.append(b.json_request("oversized:json_21MB_string", json.dumps({"image": big_b64}).encode()))
    for _ in range(3):
        reqs.append(b.multipart_request("oversized:multipart_16MB_file",
                                        multipart_body([("image", "big.jpg", b"\xff\xd8\xff" + b"\x00" * 16_000_000, None)])))
    for _ in range(2):
        reqs.append(b.json_request("oversized:json_43MB_body", b'{"image":"' + b"A" * 43_000_000 + b'"}'))
    for _ in range(3):
        # Declares more than max_body_bytes and sends almost nothing.
        reqs.append(Req("oversized:declared_50MB",
                        raw=b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\nx-api-key: " + key.encode()
                        + b"\r\ncontent-type: application/json\r\nContent-Length: 50000000\r\n\r\n{"))

    # Mutated valid images: the bulk, topping the total up to `count` (at least 2000 of them).
    seed_names = sorted(seeds)
    for _ in range(max(2000, count - len(reqs))):
        name = rng.choice(seed_names)
        reqs.append(b.image_request(f"image_mutated:{name.split('_')[0]}", [mutate(seeds[name], rng)]))

    rng.shuffle(reqs)
    return reqs, b


# ---------------------------------------------------------------------------------------------
# Transport


class Result:
    __slots__ = ("status", "headers", "body", "error")

    def __init__(self, status=None, headers=None, body=b"", error=None):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.error = error


def serialize(req: Req, host: str) -> bytes:
    if req.raw is not None:
        return req.raw
    lines = [f"{req.method} {req.path} HTTP/1.1".encode(), f"Host: {host}".encode()]
    for name, value in req.headers:
        lines.append(name.encode() + b": " + value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value)
    if req.body or req.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(req.body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + req.body


def read_response(sock, deadline: float, head_only: bool = False) -> Result:
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(65536)
        if not chunk:
            return Result(error="closed without answer" if not buf else "truncated headers")
        buf += chunk
        if len(buf) > 1 << 20:
            return Result(error="headers too long")
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    body = bytearray(rest)
    if status == 100:  # expect-continue is never sent by us; skip if it appears
        return read_response_after(sock, deadline, body)
    if head_only:
        return Result(status, headers, b"")
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            sock.settimeout(max(0.1, deadline - time.time()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = read_chunked(sock, body, deadline)
    return Result(status, headers, bytes(body))


def read_response_after(sock, deadline, leftover):
    # Re-feed leftover bytes through a tiny wrapper.
    class Pre:
        def __init__(self, s, pre):
            self.s, self.pre = s, bytes(pre)

        def settimeout(self, t):
            self.s.settimeout(t)

        def recv(self, n):
            if self.pre:
                out, self.pre = self.pre[:n], self.pre[n:]
                return out
            return self.s.recv(n)
    return read_response(Pre(sock, leftover), deadline)


def read_chunked(sock, body, deadline):
    data = bytearray(body)
    out = bytearray()
    while True:
        while b"\r\n" not in data:
            sock.settimeout(max(0.1, deadline - time.time()))
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(out)
            data += chunk
        line, _, rest = bytes(data).partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        data = bytearray(rest)
        while len(data) < size + 2:
            sock.settimeout(max(0.1, deadline - time.time()))
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(out)
            data += chunk
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2:]


class Client:
    """One keep-alive connection per worker thread; reconnects when the server closed it."""

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self.sock = None

    def connect(self):
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send(self, req: Req) -> Result:
        data = serialize(req, f"127.0.0.1:{self.port}")
        # Raw requests and anything the server may refuse mid-body get their own connection.
        fresh = req.raw is not None or len(data) > 1_000_000
        if fresh or self.sock is None:
            self.connect()
        deadline = time.time() + self.timeout
        try:
            self.send_all(data, deadline)
            result = read_response(self.sock, deadline, head_only=req.method == "HEAD")
        except (BrokenPipeError, ConnectionResetError) as e:
            # The server answered early and closed while we were still sending: read what it sent.
            try:
                result = read_response(self.sock, deadline)
            except Exception:
                result = Result(error=f"reset: {type(e).__name__}")
        except socket.timeout:
            result = Result(error="timeout")
        except Exception as e:  # noqa: BLE001 - every transport failure is recorded, not fatal
            result = Result(error=f"{type(e).__name__}: {e}")
        if result.error or fresh or result.headers.get("connection", "").lower() == "close":
            self.close()
        return result

    def send_all(self, data: bytes, deadline: float):
        view = memoryview(data)
        step = 1 << 18
        for i in range(0, len(view), step):
            # Stop sending as soon as the server has answered (it refused the body early).
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable:
                return
            self.sock.settimeout(max(0.1, deadline - time.time()))
            self.sock.sendall(view[i: i + step])


# ---------------------------------------------------------------------------------------------
# Checks


def check(req: Req, res: Result):
    """Returns (outcome, detail): outcome in ok / ok_503 / transport_refusal / violation / no_answer."""
    if res.error:
        if req.category == "protocol" or req.category.startswith("oversized"):
            return "no_answer", res.error
        return "violation", f"no answer: {res.error}"
    status = res.status
    if status >= 500:
        if status == 503 and "retry-after" in res.headers:
            code = error_code(res.body)
            return ("ok_503", code) if code in ("overloaded", "timeout", "dependency_unavailable") else (
                "violation", f"503 with body {res.body[:200]!r}")
        return "violation", f"{status} {res.body[:200]!r}"
    if req.method == "HEAD" or (req.path.startswith("/metrics") and status == 200):
        return "ok", str(status)
    if status in (400, 431) and res.headers.get("content-length") == "0" and \
            res.headers.get("connection", "").lower() == "close":
        # hyper refused the request before the application saw it (bad framing, header limits).
        return "transport_refusal", str(status)
    try:
        body = json.loads(res.body)
    except Exception:
        return "violation", f"{status} non-JSON body {res.body[:200]!r}"
    if 200 <= status < 300:
        if req.path in ("/healthz", "/readyz", "/openapi.json") or isinstance(body, dict) and "requestId" in body:
            return "ok", str(status)
        return "violation", f"{status} success body without requestId {res.body[:200]!r}"
    if not (isinstance(body, dict) and set(body) == {"error", "requestId"}
            and isinstance(body["requestId"], str) and body["requestId"]
            and isinstance(body["error"], dict) and set(body["error"]) == {"code", "message"}
            and isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)):
        return "violation", f"{status} undocumented error body {res.body[:200]!r}"
    if body["error"]["code"] not in DOCUMENTED_CODES:
        return "violation", f"{status} undocumented code {body['error']['code']}"
    return "ok", f"{status} {body['error']['code']}"


def error_code(body: bytes):
    try:
        return json.loads(body)["error"]["code"]
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# Slow clients


def slow_body(port: int, key: str, complete: bool, deadline_s: float):
    """Sends headers, then trickles the body one byte every 0.3 s; stalls halfway unless `complete`."""
    body = json.dumps({"image": "not base64!!"}).encode()
    req = Req("slow:" + ("trickle_complete" if complete else "stall_half"), path="/v1/face/detect",
              headers=[("x-api-key", key), ("content-type", "application/json")], body=body)
    head = serialize(Req("x", path=req.path, headers=req.headers, body=body), f"127.0.0.1:{port}")
    head = head[: len(head) - len(body)]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    deadline = time.time() + deadline_s
    try:
        s.sendall(head)
        send_n = len(body) if complete else len(body) // 2
        for i in range(send_n):
            s.sendall(body[i: i + 1])
            time.sleep(0.3 if complete else 0.05)
        return req, read_response(s, deadline)
    except socket.timeout:
        return req, Result(error="timeout")
    except Exception as e:  # noqa: BLE001
        return req, Result(error=f"{type(e).__name__}: {e}")
    finally:
        s.close()


def slow_headers(port: int, hold_s: float):
    """Sends half a request head and holds the connection: does the server ever close it?"""
    s = socket.create_connection(("127.0.0.1", port), timeout=hold_s)
    started = time.time()
    try:
        s.sendall(b"POST /v1/face/detect HTTP/1.1\r\nHost: x\r\n")
        data = s.recv(4096)
        return ("closed" if not data else "answered"), time.time() - started
    except socket.timeout:
        return "held_open", time.time() - started
    except OSError:
        return "closed", time.time() - started
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=45.0, help="per-request client deadline (s)")
    ap.add_argument("--slow", type=int, default=4, help="slow-body clients (half stall, half trickle)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("HOSTILE_SEED", "7")))
    ap.add_argument("--max-rss-mb", type=float, default=3000.0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    t0 = time.time()
    reqs, _ = generate(args.key, args.count, rng)
    print(f"generated {len(reqs)} requests in {time.time() - t0:.1f}s (seed {args.seed})", flush=True)

    # Memory sampler.
    rss = {"max_kb": 0, "samples": 0, "first_kb": 0, "alive": True}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                with open(f"/proc/{args.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            kb = int(line.split()[1])
                            rss["max_kb"] = max(rss["max_kb"], kb)
                            rss["first_kb"] = rss["first_kb"] or kb
                            rss["samples"] += 1
            except FileNotFoundError:
                rss["alive"] = False
                return
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    local = threading.local()
    outcomes = Counter()
    per_category = defaultdict(Counter)
    violations = []
    lock = threading.Lock()
    done = [0]
    five_xx = [0]

    def record(req, res):
        outcome, detail = check(req, res)
        with lock:
            outcomes[outcome] += 1
            if outcome == "violation" and res.status is not None and res.status >= 500:
                five_xx[0] += 1
            per_category[req.category.split(":")[0] if req.category.startswith("image_mutated") else req.category][
                f"{outcome}:{detail}" if outcome != "violation" else "VIOLATION"] += 1
            if outcome == "violation" and len(violations) < 50:
                violations.append((req.category, req.method, req.path[:80], detail))
            done[0] += 1
            if done[0] % 1000 == 0:
                print(f"  {done[0]} answered, max_rss_mb={rss['max_kb'] / 1024:.0f}", flush=True)

    def work(req):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(args.port, args.timeout)
        record(req, client.send(req))

    # Slow clients run beside the main load, each with its own deadline (request timeout + margin).
    slow_threads = []
    slow_results = []
    for i in range(args.slow):
        def run_slow(complete=(i % 2 == 0)):
            slow_results.append(slow_body(args.port, args.key, complete, 45.0))
        t = threading.Thread(target=run_slow, daemon=True)
        t.start()
        slow_threads.append(t)
    slow_header_result = []
    sh = threading.Thread(target=lambda: slow_header_result.append(slow_headers(args.port, 40.0)), daemon=True)
    sh.start()

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(work, reqs))
    for t in slow_threads:
        t.join(60)
    for req, res in slow_results:
        record(req, res)
    sh.join(45)
    stop.set()
    sampler.join(2)

    elapsed = time.time() - t0
    total = sum(outcomes.values())
    print(f"\nper category ({total} requests in {elapsed:.0f}s):")
    for cat in sorted(per_category):
        summary = ", ".join(f"{k}={v}" for k, v in per_category[cat].most_common(8))
        print(f"  {cat}: {summary}")
    print(f"outcomes: {dict(outcomes)}")
    if slow_header_result:
        state, held = slow_header_result[0]
        print(f"slow request head (slowloris): {state} after {held:.0f}s"
              + (" (WARNING: no header-read timeout)" if state == "held_open" else ""))
    count_5xx = five_xx[0]
    ok_503 = outcomes.get("ok_503", 0)
    max_rss_mb = rss["max_kb"] / 1024
    print(f"503 with Retry-After (overload/timeout, counted apart): {ok_503}")
    print(f"transport-level refusals by hyper (empty body, connection closed): {outcomes.get('transport_refusal', 0)}")
    print(f"rss: first {rss['first_kb'] / 1024:.0f} MB, max {max_rss_mb:.0f} MB over {rss['samples']} samples")
    failed = False
    if violations:
        failed = True
        print(f"VIOLATIONS ({outcomes['violation']}), first {len(violations)}:")
        for v in violations:
            print("  ", v)
    if not rss["alive"]:
        failed = True
        print("VIOLATION: the server process died")
    if max_rss_mb > args.max_rss_mb:
        failed = True
        print(f"VIOLATION: max RSS {max_rss_mb:.0f} MB exceeds {args.max_rss_mb:.0f} MB")
    if total < args.count:
        failed = True
        print(f"VIOLATION: only {total} requests sent, wanted at least {args.count}")
    with open(os.environ.get("HOSTILE_SUMMARY", "/dev/null"), "w") as f:
        f.write(f"requests={total} 5xx={count_5xx} max_rss_mb={max_rss_mb:.0f} violations={outcomes.get('violation', 0)}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
