"""Combine a photo and its alpha matte (pure numpy)."""

from __future__ import annotations

import numpy as np


def to_uint8(alpha: np.ndarray) -> np.ndarray:
    """Float alpha in [0, 1] -> uint8, rounded."""
    return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)


def cutout_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB and ``HxW`` float alpha -> ``HxWx4`` uint8 RGBA (straight alpha)."""
    if rgb.shape[:2] != alpha.shape:
        raise ValueError(f"photo {rgb.shape[:2]} and alpha {alpha.shape} differ in size")
    rgba = np.empty((*alpha.shape, 4), dtype=np.uint8)
    rgba[:, :, :3] = rgb
    rgba[:, :, 3] = to_uint8(alpha)
    return rgba
