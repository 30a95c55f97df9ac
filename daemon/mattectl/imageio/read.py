"""Decode an input photo into the RGB array the models expect, with clear errors."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mattectl.errors import InputError

logger = logging.getLogger(__name__)

# We enforce our own pixel limit (daemon.max_pixels) from the header, before decoding.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, EXIF orientation applied
    format: str | None
    source_mode: str
    icc_profile: bytes | None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def _open(data: bytes, name: str) -> Image.Image:
    if not data:
        raise InputError(f"{name}: empty file (0 bytes)")
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(
            f"{name}: not an image, or a format mattectl cannot read "
            f"(file starts with {data[:12]!r})") from None


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(img, dtype=np.uint32)
        gray = (wide >> 8 if wide.max() > 255 else wide).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def decode(data: bytes, *, name: str, max_pixels: int) -> DecodedImage:
    """Decode image bytes; any problem with the file raises :class:`InputError` naming it."""
    img = _open(data, name)
    width, height = img.size
    if width * height > max_pixels:
        raise InputError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} MP, over the limit of "
            f"{max_pixels / 1e6:.0f} MP (daemon.max_pixels); not decoded")
    if getattr(img, "is_animated", False) and img.format != "TIFF":
        raise InputError(f"{name}: animated {img.format} ({img.n_frames} frames) is not supported")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            oriented = ImageOps.exif_transpose(img)
        rgb = _to_rgb(oriented)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: corrupt or truncated {img.format or 'image'}: {exc}") from None
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb),
        format=img.format,
        source_mode=img.mode,
        icc_profile=img.info.get("icc_profile"),
    )
