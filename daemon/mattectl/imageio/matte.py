"""Alpha mattes as files: read any common matte format into floats, write 8-bit grey PNGs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from mattectl.errors import InputError

_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0,
               "I": 65535.0}


def decode_matte(data: bytes, *, name: str) -> np.ndarray:
    """Matte bytes -> ``HxW`` float32 in ``[0, 1]``.

    A grey image is the matte itself (8 or 16 bits); an image with an alpha channel (RGBA, LA,
    a PNG cutout) gives its alpha; an RGB image is read as grey (mattes saved as RGB).
    Raises :class:`InputError` naming the file when it cannot be read.
    """
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: not a readable matte image ({exc})") from None
    if img.mode in _WIDE_MODES:
        return (np.asarray(img, dtype=np.float32) / _WIDE_MODES[img.mode]).clip(0, 1)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32).clip(0, 1)
    if "A" in img.getbands() or "transparency" in img.info:
        band = img.convert("RGBA").getchannel("A")
    else:
        band = img.convert("L")
    return np.asarray(band, dtype=np.float32) * np.float32(1 / 255)


def encode_matte(alpha: np.ndarray) -> bytes:
    """``HxW`` float alpha in [0, 1] -> 8-bit grey PNG bytes (rounded)."""
    grey = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
