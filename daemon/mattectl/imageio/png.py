"""PNG encoding: fpng for 8-bit RGB(A); our own for 16 bits and grayscale; metadata spliced in.

fpng (a fast encoder with its own deflate) writes standard PNGs many times faster than zlib at
any level. fpng has no 16-bit or grayscale mode; for those this module writes the PNG itself:
the Sub filter on every row (numpy), then zlib on ~1 MB pieces compressed in parallel
and joined into one deflate stream (as pigz does: every piece but the last ends on a sync
flush). scripts/bench_encode.py measured both against OpenCV and Pillow.

Metadata goes in right after IHDR, where the PNG spec wants iCCP (before PLTE and IDAT) and
where eXIf and XMP's iTXt are allowed; every reader sees them before the pixels.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:
    import fpng
except ImportError:  # pragma: no cover - fpng is a dependency; this keeps odd platforms working
    fpng = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = len(PNG_SIGNATURE) + 4 + 4 + 13 + 4
# zlib level, strategy by bytes per sample, and piece size for what fpng cannot write, chosen
# by scripts/bench_encode.py: 16-bit photos have noisy low bytes that LZ77 cannot match, and
# Huffman coding alone was 2.5-6x faster and a little smaller than level 1; an 8-bit matte is
# runs of 0 and 255, which run-length matching compresses best.
DEFLATE_LEVEL = 1
STRATEGIES = {1: zlib.Z_RLE, 2: zlib.Z_HUFFMAN_ONLY}
PIECE_BYTES = 1 << 20
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
SUB_FILTER = 1
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


def phys_chunk(dpi: tuple[float, float]) -> bytes:
    """pHYs: pixels per metre, which is how PNG states a print resolution."""
    per_metre = [max(1, round(d / 0.0254)) for d in dpi]
    return chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1))


def metadata_chunks(*, icc_profile: bytes | None = None, exif: bytes | None = None,
                    xmp: bytes | None = None, dpi: tuple[float, float] | None = None) -> bytes:
    parts = []
    if icc_profile:
        parts.append(iccp_chunk(icc_profile))
    if dpi:
        parts.append(phys_chunk(dpi))
    if exif:
        parts.append(exif_chunk(exif))
    if xmp:
        parts.append(xmp_chunk(xmp))
    return b"".join(parts)


def _deflate_pieces(data: memoryview, strategy: int) -> bytes:
    """One zlib stream of ``data``, its pieces compressed on all cores."""
    pieces = [data[i:i + PIECE_BYTES] for i in range(0, len(data), PIECE_BYTES)] or [data]

    def deflate(index: int) -> bytes:
        compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15, 8, strategy)
        last = index == len(pieces) - 1
        return compressor.compress(pieces[index]) + compressor.flush(
            zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        body = b"".join(pool.map(deflate, range(len(pieces))))
    return b"\x78\x01" + body + struct.pack(">I", zlib.adler32(data))


def _zlib_png(pixels: np.ndarray) -> bytes:
    """Gray, gray+alpha, RGB or RGBA, 8 or 16 bits -> PNG bytes (Sub filter, parallel deflate)."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = pixels.dtype.itemsize * 8
    rows = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder(">"), copy=False))
    rows = rows.reshape(height, -1).view(np.uint8)
    step = channels * depth // 8  # bytes per pixel: Sub subtracts the byte one pixel left
    lines = np.empty((height, rows.shape[1] + 1), np.uint8)
    lines[:, 0] = SUB_FILTER
    lines[:, 1:step + 1] = rows[:, :step]
    np.subtract(rows[:, step:], rows[:, :-step], out=lines[:, step + 1:])
    header = struct.pack(">IIBBBBB", width, height, depth, COLOUR_TYPES[channels], 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", header)
            + chunk(b"IDAT", _deflate_pieces(memoryview(lines).cast("B"),
                                             STRATEGIES[pixels.dtype.itemsize]))
            + chunk(b"IEND", b""))


def encode_png(pixels: np.ndarray, *, icc_profile: bytes | None = None, exif: bytes | None = None,
               xmp: bytes | None = None, dpi: tuple[float, float] | None = None) -> bytes:
    """``HxW`` (gray), ``HxWx2`` (gray+alpha), ``HxWx3`` (RGB) or ``HxWx4`` (RGBA), uint8 or
    uint16 -> PNG bytes of the same layout and depth, with the metadata given."""
    if pixels.dtype not in (np.uint8, np.uint16) or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (2, 3, 4))):
        raise ValueError(f"expected HxW, HxWx3 or HxWx4 uint8/uint16, got {pixels.shape} "
                         f"{pixels.dtype}")
    pixels = np.ascontiguousarray(pixels)
    if fpng is not None and pixels.dtype == np.uint8 and pixels.ndim == 3 \
            and pixels.shape[2] in (3, 4):
        data = fpng.from_ndarray(pixels)
    else:
        data = _zlib_png(pixels)
    extra = metadata_chunks(icc_profile=icc_profile, exif=exif, xmp=xmp, dpi=dpi)
    return data[:_IHDR_END] + extra + data[_IHDR_END:] if extra else data
