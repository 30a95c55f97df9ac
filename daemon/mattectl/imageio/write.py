"""Render a cutout in the chosen output format, with the source's ICC profile and metadata."""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mattectl.imageio.compose import Layers, flatten, layers, quantise, rgba, trimmed
from mattectl.imageio.metadata import Metadata, for_output, photoshop_irb
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.imageio.png import encode_png
from mattectl.imageio.read import DecodedImage
from mattectl.imageio.tiff import encode_tiff

logger = logging.getLogger(__name__)

# libwebp lossless effort (Pillow's "quality" when lossless) and method, and whether the colour
# of fully transparent pixels is kept: chosen by scripts/bench_encode.py.
WEBP_EFFORT = 0
WEBP_METHOD = 0
HOLDS_IPTC = (OutputFormat.TIFF, OutputFormat.JPEG)


@dataclass(frozen=True)
class Encoded:
    data: bytes
    extension: str  # without the dot
    width: int
    height: int


def render(image: DecodedImage, alpha: np.ndarray, options: OutputOptions, *,
           model_side: int | None = None) -> Encoded:
    """The finished output file's bytes for ``image`` under the model's ``alpha``: the two
    steps :func:`refine` then :func:`encode_cut`, which callers that time them run apart."""
    return encode_cut(image, refine(image, alpha, options, model_side=model_side), options)


def refine(image: DecodedImage, alpha: np.ndarray, options: OutputOptions, *,
           model_side: int | None = None) -> Layers:
    """The cutout before encoding. With ``options.clean_edges``: no holes inside the subject
    when ``options.fill_holes`` (``refine.fill_holes``), the alpha refined against the
    full-resolution photo as ``options.edges`` says (``refine.refine_matting``, or
    ``edges.refine_alpha`` when enlarged from ``model_side``) and the subject's own colour in
    the edge band (not for a matte). Then the source's own transparency, and the trim when
    asked."""
    cut = layers(image.pixels, alpha, source_alpha=image.alpha, clean_edges=options.clean_edges,
                 model_side=model_side, guide=image.rgb,
                 colour=options.format is not OutputFormat.MATTE, edges=options.edges,
                 holes=options.fill_holes)
    if options.trim:
        cut = trimmed(cut, options.trim_margin)
    return cut


def encode_cut(image: DecodedImage, cut: Layers, options: OutputOptions) -> Encoded:
    """The output file of a cutout from :func:`refine`, with ``image``'s ICC profile and
    metadata."""
    data = encode(cut, options, icc_profile=image.icc_profile, metadata=image.metadata)
    return Encoded(data, options.extension, cut.width, cut.height)


def encode(cut: Layers, options: OutputOptions, *, icc_profile: bytes | None,
           metadata: Metadata) -> bytes:
    fmt = options.format
    meta = for_output(metadata, cut.width, cut.height, holds_iptc=fmt in HOLDS_IPTC)
    depth = np.dtype(np.uint16 if options.keep_16bit and cut.colour.dtype == np.uint16
                     else np.uint8)
    if fmt is OutputFormat.PNG:
        return encode_png(rgba(cut, depth), icc_profile=icc_profile, exif=meta.exif,
                          xmp=meta.xmp, dpi=meta.dpi)
    if fmt is OutputFormat.TIFF:
        return encode_tiff(rgba(cut, depth), icc_profile=icc_profile, exif=meta.exif,
                           xmp=meta.xmp, iptc=meta.iptc, dpi=meta.dpi)
    if fmt is OutputFormat.MATTE:  # coverage, not colour: no ICC profile
        return encode_png(quantise(cut.alpha, depth), exif=meta.exif, xmp=meta.xmp,
                          dpi=meta.dpi)
    if fmt is OutputFormat.WEBP:
        return _pillow(Image.fromarray(rgba(cut, np.dtype(np.uint8)), "RGBA"), "WEBP", meta,
                       icc_profile, lossless=True, quality=WEBP_EFFORT, method=WEBP_METHOD)
    quality = options.jpeg_quality
    jpeg = _pillow(Image.fromarray(flatten(cut, options.background), "RGB"), "JPEG", meta,
                   icc_profile, quality=quality, subsampling=0 if quality >= 90 else 2,
                   dpi=meta.dpi or (72, 72))
    return with_iptc(jpeg, meta.iptc) if meta.iptc else jpeg


def _pillow(img: Image.Image, fmt: str, meta: Metadata, icc_profile: bytes | None,
            **params: object) -> bytes:
    extra = {key: value for key, value in (
        ("icc_profile", icc_profile), ("exif", meta.exif), ("xmp", meta.xmp)) if value}
    out = io.BytesIO()
    img.save(out, fmt, **params, **extra)
    return out.getvalue()


def with_iptc(jpeg: bytes, iptc: bytes) -> bytes:
    """Insert IPTC as a Photoshop APP13 segment after the JPEG's other APPn segments."""
    payload = b"Photoshop 3.0\0" + photoshop_irb(iptc)
    if len(payload) > 65533:
        logger.warning("IPTC block of %d bytes does not fit a JPEG segment; left out", len(iptc))
        return jpeg
    pos = 2  # after SOI
    while jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        pos += 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
    segment = b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:pos] + segment + jpeg[pos:]
