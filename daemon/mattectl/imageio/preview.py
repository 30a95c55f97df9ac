"""Small pictures for people to look at: resizing and JPEG/PNG encoding of RGB arrays."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that fits inside ``max_side`` keeping the aspect ratio (never enlarged)."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an ``HxW`` or ``HxWxC`` array; area averaging when shrinking, linear otherwise."""
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    shrinking = width < image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover ``width x height`` and crop the centre (a background filling a frame)."""
    scale = max(width / image.shape[1], height / image.shape[0])
    scaled = resize(image, max(width, round(image.shape[1] * scale)),
                    max(height, round(image.shape[0] * scale)))
    top = (scaled.shape[0] - height) // 2
    left = (scaled.shape[1] - width) // 2
    return scaled[top:top + height, left:left + width]


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """``HxWx3`` uint8 RGB (or ``HxW`` grey) -> JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """``HxWx3`` / ``HxWx4`` / ``HxW`` uint8 -> PNG bytes (lossless, for exact pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def thumbnail_webp(encoded: bytes, max_side: int = 256, quality: int = 80) -> bytes:
    """A finished cutout (PNG, TIFF, WebP or JPEG bytes; 8 or 16 bits, with or without alpha,
    or a grey matte) -> a WebP of at most ``max_side`` pixels, its transparency kept.
    Raises ValueError when the bytes are no image OpenCV can read."""
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not an image OpenCV can decode")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    width, height = fit_size(image.shape[1], image.shape[0], max_side)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(resize(image, width, height))).save(
        buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()
