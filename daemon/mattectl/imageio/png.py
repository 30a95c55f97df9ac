"""PNG encoding.

fpng (a fast encoder with its own deflate) writes standard PNGs about 8x faster than OpenCV's
fastest zlib level at 1080p RGBA, measured here (23 ms against 189 ms; files ~20% larger).
OpenCV is the fallback. Metadata chunks are spliced in after IHDR.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

try:
    import fpng
except ImportError:  # pragma: no cover - fpng is a dependency; this keeps odd platforms working
    fpng = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = len(PNG_SIGNATURE) + 4 + 4 + 13 + 4


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def iccp_chunk(profile: bytes, name: bytes = b"ICC profile") -> bytes:
    return chunk(b"iCCP", name + b"\0\0" + zlib.compress(profile))


def encode_rgba(rgba: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
    """``HxWx4`` uint8 RGBA -> PNG bytes (8 bits per channel), with the ICC profile if given."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected HxWx4 uint8, got {rgba.shape} {rgba.dtype}")
    rgba = np.ascontiguousarray(rgba)
    if fpng is not None:
        data = fpng.from_ndarray(rgba)
    else:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError("OpenCV could not encode the PNG")
        data = buf.tobytes()
    if icc_profile:
        data = data[:_IHDR_END] + iccp_chunk(icc_profile) + data[_IHDR_END:]
    return data
