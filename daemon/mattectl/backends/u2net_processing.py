"""U²-Net's inference pre- and post-processing as pure numpy functions (no framework).

Two resampling flavours reproduce the two published references: ``official`` is the U-2-Net
authors' script (skimage ``resize`` with anti-aliasing: a Gaussian of sigma ``(scale - 1) / 2``
over a zero-padded image, then bilinear sampling at pixel centres; the mask truncated to 8 bits,
as Pillow's float-to-8-bit conversion does, then enlarged with Pillow's bilinear filter);
``lanczos`` is rembg's (Pillow Lanczos both ways, the mask rounded down to 8 bits likewise).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

INPUT_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

Resample = Literal["official", "lanczos"]
# From this many pixels the anti-aliased reduction runs as banded matrices (1.9x faster at
# 1080p, 7x at 24 MP on 2 cores; below, OpenCV's blur of the whole photo is quicker).
BANDED_FROM = 1_000_000
_BLOCK = 16  # outputs per matrix product: fewer wastes calls, more multiplies zeros


def _gaussian_kernel_size(sigma: float) -> int:
    # scipy's gaussian_filter truncates at 4 sigma.
    return 2 * math.ceil(4 * sigma) + 1 if sigma > 0 else 1


def resize_antialiased(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float32 resize that low-passes before shrinking, as skimage does (``mode='constant'``).

    The same linear operator two ways: OpenCV's Gaussian blur of the whole photo then bilinear
    sampling (small photos), or, from :data:`BANDED_FROM` pixels, the two steps folded into one
    banded weight matrix per axis and applied only where the samples need them (a 24 MP photo
    blurred whole cost 1.2 s of the 2.2 s per photo on the CPU, and 0.9 GB of float copies;
    tests/test_u2net_processing.py checks that both ways agree)."""
    if image.shape[0] * image.shape[1] >= BANDED_FROM:
        return _resize_banded(image, width, height)
    return _resize_blurred(image, width, height)


def _resize_blurred(image: np.ndarray, width: int, height: int) -> np.ndarray:
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


@dataclass(frozen=True)
class _AxisWeights:
    """One axis of the blurred resize: ``matrix[j]`` weighs the inputs of output ``j``;
    ``blocks`` are (first output, end, first input, end) for runs of :data:`_BLOCK` outputs."""

    matrix: np.ndarray
    blocks: tuple[tuple[int, int, int, int], ...]


@functools.lru_cache(maxsize=16)
def _axis_weights(size: int, target: int) -> _AxisWeights:
    """Gaussian (sigma ``(scale - 1) / 2``, zero outside the image) then OpenCV's bilinear
    sampling at pixel centres (clamped to the first and last pixel), as one matrix."""
    scale = size / target
    sigma = max(0.0, (scale - 1) / 2)
    ksize = _gaussian_kernel_size(sigma)
    kernel = cv2.getGaussianKernel(ksize, sigma or 1e-6)[:, 0]
    position = (np.arange(target) + 0.5) * scale - 0.5
    left = np.floor(position).astype(np.int64)
    frac = position - left
    frac[left < 0] = 0
    left[left < 0] = 0
    frac[left >= size - 1] = 0
    left[left >= size - 1] = size - 1
    taps = np.arange(ksize) - ksize // 2
    outputs = np.broadcast_to(np.arange(target)[:, None], (target, ksize))
    matrix = np.zeros((target, size))
    for source, share in ((left, 1 - frac), (np.minimum(left + 1, size - 1), frac)):
        inputs = source[:, None] + taps
        inside = (inputs >= 0) & (inputs < size)
        np.add.at(matrix, (outputs[inside], inputs[inside]), (share[:, None] * kernel)[inside])
    blocks = []
    for start in range(0, target, _BLOCK):
        used = np.flatnonzero(matrix[start:start + _BLOCK].any(axis=0))
        blocks.append((start, min(target, start + _BLOCK), int(used[0]), int(used[-1]) + 1))
    return _AxisWeights(matrix.astype(np.float32), tuple(blocks))


def _apply(weights: _AxisWeights, values: np.ndarray) -> np.ndarray:
    """``weights.matrix @ values`` (values: inputs x K), a block of outputs at a time over only
    the inputs it weighs, converted to float32 block by block."""
    out = np.empty((weights.matrix.shape[0], values.shape[1]), np.float32)
    for start, end, first, last in weights.blocks:
        np.matmul(weights.matrix[start:end, first:last],
                  values[first:last].astype(np.float32, copy=False), out=out[start:end])
    return out


def _resize_banded(image: np.ndarray, width: int, height: int) -> np.ndarray:
    image = np.ascontiguousarray(image)
    rows, cols = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    tall = _apply(_axis_weights(rows, height), image.reshape(rows, cols * channels))
    across = np.ascontiguousarray(tall.reshape(height, cols, channels).transpose(1, 0, 2))
    out = _apply(_axis_weights(cols, width), across.reshape(cols, height * channels))
    out = out.reshape(width, height, channels).transpose(1, 0, 2)
    return np.ascontiguousarray(out[:, :, 0] if image.ndim == 2 else out)


def preprocess(rgb: np.ndarray, resample: Resample = "official") -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``1x3x320x320`` float32: squashed to 320x320 (aspect not kept),
    divided by its maximum, normalised with the ImageNet mean and std."""
    if resample == "official":
        small = resize_antialiased(rgb, INPUT_SIZE, INPUT_SIZE) * np.float32(1 / 255)
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
    alpha = np.asarray(big, dtype=np.float32)
    alpha *= np.float32(1 / 255)  # in place: a 100 MP alpha is 400 MB
    return alpha


@dataclass(frozen=True)
class U2NetCodec:
    """U²-Net's pre- and post-processing as a backend's codec
    (:class:`mattectl.backends.base.Codec`): the photo squashed to ``1x3x320x320``, the
    network's ``320x320`` ``d0`` enlarged back to the photo."""

    resample: Resample = "official"

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        return preprocess(rgb, self.resample)

    def decode(self, output: np.ndarray, width: int, height: int) -> np.ndarray:
        return postprocess(output, width, height, self.resample)
