"""A cheap per-photo confidence in the alpha, 0..1: how sure the model was.

A model that knows where the person is gives an alpha that is nearly 0 or 1 everywhere but a
thin edge; one that is unsure leaves a wide band of partial alpha (pale faces, half-seen limbs,
a background object it half takes for the subject). So the confidence is the share of the
subject's area (alpha above ``LOW``) that is not in the uncertain band ``LOW < alpha < HIGH``.
When a second, independent pass saw the frame (the rules' probe, when the photo was matted on a
crop or by another model), their disagreement (1 - IoU of the two masks) lowers it further.
Computed on the alpha shrunk to at most ``SIDE`` pixels: the model decided at 320 px anyway.
"""

from __future__ import annotations

import numpy as np

from mattectl.imageio.regions import resized, shrunk

LOW, HIGH = 0.05, 0.95
SIDE = 512
THRESHOLD = 0.5
LOW_CONFIDENCE = 0.6  # below this a photo is worth a look (flagged in status and the report)


def band_confidence(alpha: np.ndarray) -> float:
    """1 - the share of the subject's area in the uncertain band; 0 when there is no subject."""
    small = shrunk(alpha, SIDE)
    subject = np.count_nonzero(small > LOW)
    if subject == 0:
        return 0.0
    unsure = np.count_nonzero((small > LOW) & (small < HIGH))
    return 1.0 - unsure / subject


def agreement(alpha: np.ndarray, other: np.ndarray) -> float:
    """IoU of two alphas of the same frame (any sizes; both shrunk to the smaller's shape)."""
    a = shrunk(alpha, min(SIDE, max(other.shape)))
    b = resized(other, a.shape[1], a.shape[0])
    union = np.count_nonzero((a >= THRESHOLD) | (b >= THRESHOLD))
    if union == 0:
        return 1.0
    return np.count_nonzero((a >= THRESHOLD) & (b >= THRESHOLD)) / union


def confidence(alpha: np.ndarray, probe: np.ndarray | None = None) -> float:
    """The photo's confidence, 0..1 (rounded to 3 places): :func:`band_confidence`, times the
    :func:`agreement` with ``probe`` (an independent full-frame pass) when one is given."""
    value = band_confidence(alpha)
    if probe is not None:
        value *= agreement(alpha, probe)
    return round(float(value), 3)
