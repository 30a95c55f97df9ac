"""PNG encoding: fpng for 8-bit RGB(A), OpenCV for 16 bits and grayscale, metadata chunks spliced.

fpng (a fast encoder with its own deflate) writes standard PNGs many times faster than zlib at
any level (scripts/bench_encode.py). Metadata goes in right after IHDR, where the PNG spec wants
iCCP (before PLTE and IDAT) and where eXIf and XMP's iTXt are allowed; every reader sees them
before the pixels.
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
# zlib level for what fpng cannot write (16 bits, grayscale), chosen by scripts/bench_encode.py.
OPENCV_LEVEL = 1
XMP_KEYWORD = b"XML:com.adobe.xmp"


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def iccp_chunk(profile: bytes, name: bytes = b"ICC profile") -> bytes:
    return chunk(b"iCCP", name + b"\0\0" + zlib.compress(profile))


def exif_chunk(exif: bytes) -> bytes:
    """eXIf holds the bare TIFF structure, without JPEG's ``Exif\\0\\0`` prefix."""
    return chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))


def xmp_chunk(xmp: bytes) -> bytes:
    # iTXt: keyword, NUL, compression flag 0, method 0, empty language tag, empty translation.
    return chunk(b"iTXt", XMP_KEYWORD + b"\0\0\0\0\0" + xmp)


def metadata_chunks(*, icc_profile: bytes | None = None, exif: bytes | None = None,
                    xmp: bytes | None = None) -> bytes:
    parts = []
    if icc_profile:
        parts.append(iccp_chunk(icc_profile))
    if exif:
        parts.append(exif_chunk(exif))
    if xmp:
        parts.append(xmp_chunk(xmp))
    return b"".join(parts)


def _opencv_png(pixels: np.ndarray) -> bytes:
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, OPENCV_LEVEL])
    if not ok:
        raise ValueError("OpenCV could not encode the PNG")
    return buf.tobytes()


def encode_png(pixels: np.ndarray, *, icc_profile: bytes | None = None, exif: bytes | None = None,
               xmp: bytes | None = None) -> bytes:
    """``HxW`` (gray), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA), uint8 or uint16 -> PNG bytes of the
    same layout and depth, with the metadata given."""
    if pixels.dtype not in (np.uint8, np.uint16) or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
        raise ValueError(f"expected HxW, HxWx3 or HxWx4 uint8/uint16, got {pixels.shape} "
                         f"{pixels.dtype}")
    pixels = np.ascontiguousarray(pixels)
    if fpng is not None and pixels.dtype == np.uint8 and pixels.ndim == 3:
        data = fpng.from_ndarray(pixels)
    else:
        data = _opencv_png(pixels)
    extra = metadata_chunks(icc_profile=icc_profile, exif=exif, xmp=xmp)
    return data[:_IHDR_END] + extra + data[_IHDR_END:] if extra else data


def encode_rgba(rgba: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
    """``HxWx4`` uint8 RGBA -> PNG bytes (kept for callers of the first version)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"expected HxWx4 uint8, got {rgba.shape} {rgba.dtype}")
    return encode_png(rgba, icc_profile=icc_profile)
