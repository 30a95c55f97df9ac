"""U²-Net's inference pre- and post-processing as pure numpy functions (no framework).

Two resampling flavours reproduce the two published references: ``official`` is the U-2-Net
authors' script (skimage ``resize`` with anti-aliasing: a Gaussian of sigma ``(scale - 1) / 2``
over a zero-padded image, then bilinear sampling at pixel centres; the mask truncated to 8 bits,
as Pillow's float-to-8-bit conversion does, then enlarged with Pillow's bilinear filter);
``lanczos`` is rembg's (Pillow Lanczos both ways, the mask rounded down to 8 bits likewise).
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
from PIL import Image

INPUT_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

Resample = Literal["official", "lanczos"]


def _gaussian_kernel_size(sigma: float) -> int:
    # scipy's gaussian_filter truncates at 4 sigma.
    return 2 * math.ceil(4 * sigma) + 1 if sigma > 0 else 1


def resize_antialiased(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float32 resize that low-passes before shrinking, as skimage does (``mode='constant'``)."""
    img = image.astype(np.float32, copy=False)
    sigma_x = max(0.0, (img.shape[1] / width - 1) / 2)
    sigma_y = max(0.0, (img.shape[0] / height - 1) / 2)
    if sigma_x > 0 or sigma_y > 0:
        img = cv2.GaussianBlur(
            img,
            (_gaussian_kernel_size(sigma_x), _gaussian_kernel_size(sigma_y)),
            sigmaX=sigma_x or 1e-6,
            sigmaY=sigma_y or 1e-6,
            borderType=cv2.BORDER_CONSTANT,
        )
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def preprocess(rgb: np.ndarray, resample: Resample = "official") -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``1x3x320x320`` float32: squashed to 320x320 (aspect not kept),
    divided by its maximum, normalised with the ImageNet mean and std."""
    if resample == "official":
        small = resize_antialiased(rgb.astype(np.float32) / 255.0, INPUT_SIZE, INPUT_SIZE)
    else:
        pil = Image.fromarray(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS)
        small = np.asarray(pil, dtype=np.float32)
    small = small / max(float(small.max()), 1e-6)
    x = (small - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def normalise(prediction: np.ndarray) -> np.ndarray:
    """Min-max normalisation of the network's ``d0`` (a constant map becomes zeros)."""
    lo, hi = float(prediction.min()), float(prediction.max())
    if hi - lo < 1e-12:
        return np.zeros_like(prediction, dtype=np.float32)
    return ((prediction - lo) / (hi - lo)).astype(np.float32)


def postprocess(prediction: np.ndarray, width: int, height: int,
                resample: Resample = "official") -> np.ndarray:
    """``320x320`` network output -> ``height x width`` float32 alpha in [0, 1]."""
    # Both references truncate to 8 bits before enlarging; doing the same keeps us within
    # rounding of them (the mask is smooth at 320x320, so nothing visible is lost).
    return enlarge((normalise(prediction) * 255).astype(np.uint8), width, height, resample)


def enlarge(mask: np.ndarray, width: int, height: int, resample: Resample) -> np.ndarray:
    """An 8-bit mask -> ``height x width`` float32 alpha in [0, 1], resampled as the reference
    the backend follows does (the rules' probe enlarges its mask with this too)."""
    method = Image.Resampling.LANCZOS if resample == "lanczos" else Image.Resampling.BILINEAR
    big = Image.fromarray(mask, mode="L").resize((width, height), method)
    return np.asarray(big, dtype=np.float32) * np.float32(1 / 255)
