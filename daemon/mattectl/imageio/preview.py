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
