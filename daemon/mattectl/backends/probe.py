"""The subject probe, a capability of the U²-Net backends: one coarse pass over the frame
squashed to the network's 320x320 input, returning the subject's mask, share and box.

U²-Net squashes every input to 320x320 anyway, so the probe shrinks the photo exactly as the
backend's own pre-processing would and runs the real backend on that: its mask is then (within
8-bit rounding of the shrunk input) the mask a full run of the same model would produce, and
:func:`expand` turns it into that model's alpha for the whole frame without a second pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from mattectl.backends.base import MattingBackend
from mattectl.backends.u2net_processing import INPUT_SIZE, Resample, enlarge, resize_antialiased
from mattectl.imageio.compose import to_uint8

# Tried in order; the first available one probes. All run through the U²-Net backend.
PROBE_MODELS = ("u2netp", "u2net", "u2net_human_seg")
THRESHOLD = 0.5  # alpha at or above this counts as subject
MIN_PART = 0.05  # blobs smaller than this share of the largest are specks, not people


@dataclass(frozen=True)
class SubjectProbe:
    """``mask``: INPUT_SIZE x INPUT_SIZE float32 alpha in [0, 1] of the squashed frame;
    ``fraction``: the subject's share of the frame (0..1); ``box``: ``(x0, y0, x1, y1)`` around
    its parts in full-frame pixels, None when nothing was found; ``ms``: the whole probe."""

    model: str
    mask: np.ndarray
    fraction: float
    box: tuple[int, int, int, int] | None
    ms: float


def shrink(rgb: np.ndarray, resample: Resample) -> np.ndarray:
    """The photo squashed to the network's input size, as the backend's pre-processing does."""
    if resample == "lanczos":
        pil = Image.fromarray(rgb).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS)
        return np.asarray(pil)
    small = resize_antialiased(rgb, INPUT_SIZE, INPUT_SIZE)
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


def subject_of(mask: np.ndarray, width: int, height: int
               ) -> tuple[float, tuple[int, int, int, int] | None]:
    """Share of the frame covered by the subject, and the box ``(x0, y0, x1, y1)`` around its
    parts in full-frame pixels. Specks (parts under ``MIN_PART`` of the largest) do not widen
    the box."""
    binary = (mask >= THRESHOLD).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if count <= 1:
        return 0.0, None
    keep = stats[1:][areas >= MIN_PART * areas.max()]
    x0 = keep[:, cv2.CC_STAT_LEFT].min()
    y0 = keep[:, cv2.CC_STAT_TOP].min()
    x1 = (keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max()
    sx, sy = width / mask.shape[1], height / mask.shape[0]
    box = (int(x0 * sx), int(y0 * sy), min(width, int(np.ceil(x1 * sx))),
           min(height, int(np.ceil(y1 * sy))))
    # The squash scales every pixel alike, so the share of the frame is the share of the mask.
    return float(binary.mean()), box


def probe(backend: MattingBackend, rgb: np.ndarray, resample: Resample) -> SubjectProbe:
    """One coarse pass of a U²-Net ``backend`` (loaded) over the squashed frame."""
    start = time.perf_counter()
    mask = backend.predict(shrink(rgb, resample))
    ms = (time.perf_counter() - start) * 1000.0
    fraction, box = subject_of(mask, rgb.shape[1], rgb.shape[0])
    return SubjectProbe(backend.name, mask, fraction, box, ms)


def expand(mask: np.ndarray, width: int, height: int, resample: Resample) -> np.ndarray:
    """The probe's mask enlarged to the frame, as the backend's post-processing enlarges its
    8-bit mask: the probed model's alpha for the whole photo."""
    return enlarge(to_uint8(mask), width, height, resample)
