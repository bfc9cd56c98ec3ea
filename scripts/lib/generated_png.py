"""A plain gradient PNG (no face, no document) for the shell tests when ../shared/data is absent.

Usage: generated_png.py PATH WIDTH HEIGHT
"""

import struct
import sys
import zlib

path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = b"".join(
    b"\x00" + bytes(v for x in range(w) for v in ((x * 7) % 256, (y * 5) % 256, 128)) for y in range(h)
)


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
