"""A baseline TIFF writer for 8- and 16-bit RGB(A) and gray, with ICC, EXIF, XMP and IPTC.

Pillow cannot write 16-bit RGB(A) and tifffile cannot write an EXIF sub-IFD, so this writes the
file itself: little-endian, one IFD serialised by Pillow's ``ImageFileDirectory_v2`` (which also
writes the EXIF and GPS sub-IFDs), then the pixels in strips: horizontal-differencing predictor
and Adobe Deflate (Huffman coding only) for 8 bits, compressed on all cores (zlib releases the
GIL); 16 bits are stored uncompressed (see COMPRESS). Alpha is marked unassociated
(ExtraSamples = 2), as Photoshop writes a transparent layer's alpha.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, TiffImagePlugin

from mattectl.imageio.metadata import EXIF_IFD, GPS_IFD, TIFF_DESCRIPTIVE

ORIENTATION = 0x0112
STRIP_BYTES = 1 << 19  # uncompressed bytes per strip: enough strips to use every core
# zlib level and strategy, chosen by scripts/bench_encode.py: after the predictor, Huffman
# coding alone was as small as level 1 and faster (1.7x at 16 bits, whose low bytes are noise).
# 16-bit files stay uncompressed: deflate saved only ~21% there, at 4x the time (an 8-bit
# cutout shrinks by two thirds for 3x the time).
DEFLATE_LEVEL = 1
DEFLATE_STRATEGY = zlib.Z_HUFFMAN_ONLY
COMPRESS = {8: True, 16: False}  # by bits per sample
NO_COMPRESSION, ADOBE_DEFLATE = 1, 8
SHORT, LONG, UNDEFINED, BYTE = 3, 4, 7, 1
NOT_IN_TIFF = (0xA002, 0xA003)  # EXIF's pixel size: TIFF has ImageWidth/ImageLength


def _predict(rows: np.ndarray) -> np.ndarray:
    """TIFF predictor 2: each sample minus the same sample of the pixel to its left."""
    out = rows.copy()
    out[:, 1:] -= rows[:, :-1]
    return out


def _strips(pixels: np.ndarray, compress: bool) -> tuple[list[bytes], int]:
    row_bytes = pixels[0].nbytes
    rows_per_strip = max(1, min(pixels.shape[0], STRIP_BYTES // max(1, row_bytes)))
    parts = [pixels[i:i + rows_per_strip] for i in range(0, pixels.shape[0], rows_per_strip)]
    if not compress:
        return [np.ascontiguousarray(p).astype(p.dtype.newbyteorder("<")).tobytes()
                for p in parts], rows_per_strip

    def deflate(part: np.ndarray) -> bytes:
        little = _predict(part).astype(part.dtype.newbyteorder("<"), copy=False)
        compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, 15, 8, DEFLATE_STRATEGY)
        return compressor.compress(little.tobytes()) + compressor.flush()

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(deflate, parts)), rows_per_strip


def _exif_tags(exif: bytes | None) -> dict[int, object]:
    if not exif:
        return {}
    parsed = Image.Exif()
    parsed.load(exif)
    tags: dict[int, object] = {t: parsed[t] for t in TIFF_DESCRIPTIVE if t in parsed}
    for ifd in (EXIF_IFD, GPS_IFD):
        if sub := parsed.get_ifd(ifd):
            tags[ifd] = {k: v for k, v in sub.items() if k not in NOT_IN_TIFF}
    return tags


def _ifd(pixels: np.ndarray, offsets: list[int], counts: list[int], rows_per_strip: int, *,
         compress: bool, icc_profile: bytes | None, exif: bytes | None, xmp: bytes | None,
         iptc: bytes | None,
         dpi: tuple[float, float] | None) -> TiffImagePlugin.ImageFileDirectory_v2:
    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in _exif_tags(exif).items():
        ifd[tag] = value
    structure: list[tuple[int, object, int]] = [
        (254, 0, LONG), (256, width, LONG), (257, height, LONG),
        (258, (pixels.dtype.itemsize * 8,) * samples, SHORT),
        (259, ADOBE_DEFLATE if compress else NO_COMPRESSION, SHORT),
        (262, 2 if samples >= 3 else 1, SHORT), (273, tuple(offsets), LONG),
        (ORIENTATION, 1, SHORT), (277, samples, SHORT), (278, rows_per_strip, LONG),
        (279, tuple(counts), LONG), (284, 1, SHORT), (339, (1,) * samples, SHORT),
    ]
    if compress:
        structure.append((317, 2, SHORT))
    if samples in (2, 4):
        structure.append((338, (2,), SHORT))  # unassociated alpha
    if dpi or 282 not in ifd:
        x_dpi, y_dpi = dpi or (72.0, 72.0)
        structure += [(282, float(x_dpi), 5), (283, float(y_dpi), 5), (296, 2, SHORT)]
    if icc_profile:
        structure.append((34675, icc_profile, UNDEFINED))
    if xmp:
        structure.append((700, xmp, BYTE))
    if iptc:
        # Photoshop writes LONGs, but Pillow's serialiser (and its reader) take UNDEFINED,
        # which exiftool, libtiff and tifffile read as well.
        structure.append((33723, iptc, UNDEFINED))
    for tag, value, kind in structure:
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    return ifd


def encode_tiff(pixels: np.ndarray, *, compress: bool | None = None,
                icc_profile: bytes | None = None,
                exif: bytes | None = None, xmp: bytes | None = None,
                iptc: bytes | None = None, dpi: tuple[float, float] | None = None) -> bytes:
    """``HxW``, ``HxWx2``, ``HxWx3`` or ``HxWx4`` (gray, gray+alpha, RGB, RGBA; uint8 or uint16)
    -> TIFF bytes of the same layout and depth. ``exif`` is as Pillow writes it (``Exif\\0\\0``
    + TIFF); its descriptive tags and sub-IFDs are carried, its orientation is set to 1.
    ``compress=None`` compresses by depth (:data:`COMPRESS`)."""
    if pixels.dtype not in (np.uint8, np.uint16) or not (
            pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (2, 3, 4))):
        raise ValueError(f"cannot write {pixels.shape} {pixels.dtype} as TIFF")
    if compress is None:
        compress = COMPRESS[pixels.dtype.itemsize * 8]
    strips, rows_per_strip = _strips(pixels, compress)
    # Pillow places the pixels right after the IFD and its values: strip offsets are given
    # relative to there, and it adds where that is.
    offsets, position = [], 0
    for strip in strips:
        offsets.append(position)
        position += len(strip) + (len(strip) & 1)  # word-aligned, as TIFF recommends
    ifd = _ifd(pixels, offsets, [len(s) for s in strips], rows_per_strip, compress=compress,
               icc_profile=icc_profile, exif=exif, xmp=xmp, iptc=iptc, dpi=dpi)
    head = b"II*\0" + struct.pack("<I", 8) + ifd.tobytes(8)
    return head + b"".join(s + b"\0" * (len(s) & 1) for s in strips)
