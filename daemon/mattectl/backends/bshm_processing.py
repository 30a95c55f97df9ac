"""BSHM's pre- and post-processing as pure numpy/OpenCV functions (no TensorFlow).

ModelScope's portrait-matting pipeline feeds the graph the photo itself: ``HxWx3`` RGB, values
0..255 as floats, no batch axis, no normalisation, no resize; the graph returns ``HxWx4`` uint8
RGBA with the alpha in channel 3. mattectl does the same, except that a photo whose long side is
over ``max_side`` is reduced first (the model card: it works best below 2000x2000) and the alpha
is enlarged back to the photo's size.
"""

from __future__ import annotations

import cv2
import numpy as np


def model_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` fed to the graph: unchanged up to ``max_side``, else the long side
    brought to ``max_side`` with the aspect ratio kept (each side at least 1 pixel)."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def preprocess(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``hxwx3`` float32 in 0..255 at :func:`model_size`."""
    height, width = rgb.shape[:2]
    size = model_size(width, height, max_side)
    if size != (width, height):
        # Area averaging is the anti-aliased reduction; bilinear would alias fine hair.
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def postprocess(output_png: np.ndarray, width: int, height: int) -> np.ndarray:
    """The graph's ``hxwx4`` uint8 RGBA -> ``height x width`` float32 alpha in [0, 1]."""
    if output_png.ndim != 3 or output_png.shape[2] != 4 or output_png.dtype != np.uint8:
        raise ValueError(f"BSHM returned {output_png.shape} {output_png.dtype}, expected HxWx4 "
                         "uint8 RGBA")
    alpha = output_png[:, :, 3].astype(np.float32) * np.float32(1 / 255)
    if alpha.shape != (height, width):
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha
