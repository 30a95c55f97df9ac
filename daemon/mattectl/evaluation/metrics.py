"""Alpha-matting error measures, as the matting literature defines them (numpy and cv2 only).

Every metric compares a predicted and a true alpha (``HxW`` floats in ``[0, 1]``, same shape):
it reduces a per-pixel error map (:func:`error_maps`) over a region by a sum or a mean, then
scales the result as the Adobe Deep Image Matting benchmark (Xu et al., 2017) does.
:data:`METRICS` states each normalisation; :func:`measure` applies them:

- SAD: sum of ``|pred - true|`` over the region, divided by 1000.
- MSE: mean of ``(pred - true)^2`` over the region, times 1000.
- MAE: mean of ``|pred - true|`` over the region, times 1000.
- Grad: sum over the region of the squared difference of gradient magnitudes, the gradients taken
  with first-order derivative-of-Gaussian filters (sigma 1.4) on the whole image, divided by 1000.
- Conn: connectivity error (Rhemann et al., 2009) with thresholds 0, 0.1, ..., 1 and the 0.15
  rule, summed over the region, divided by 1000.

Two regions are measured: ``image`` (every pixel) and ``band``, the transition band where the
truth is strictly between 0 and 1. Sums grow with the number of pixels; means do not. A metric
over an empty region is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

import cv2
import numpy as np

GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
CONNECTIVITY_MIN_DISTANCE = 0.15  # "the 0.15 rule": smaller departures count as connected


class Region(StrEnum):
    IMAGE = "image"
    BAND = "band"


class Reduction(StrEnum):
    SUM = "sum"
    MEAN = "mean"


@dataclass(frozen=True)
class MetricInfo:
    label: str
    error_map: str  # the per-pixel map it reduces (see error_maps)
    reduction: Reduction
    scale: float  # reported value = reduced value * scale
    unit: str  # how a person reads the reported number


METRICS: dict[str, MetricInfo] = {
    "sad": MetricInfo("SAD", "abs", Reduction.SUM, 1e-3,
                      "sum of |error| over the region / 1000 (alpha in 0..1)"),
    "mse": MetricInfo("MSE", "sq", Reduction.MEAN, 1e3,
                      "mean of error^2 over the region x 1000 (alpha in 0..1)"),
    "mae": MetricInfo("MAE", "abs", Reduction.MEAN, 1e3,
                      "mean of |error| over the region x 1000 (alpha in 0..1)"),
    "grad": MetricInfo("Grad", "grad", Reduction.SUM, 1e-3,
                       "sum over the region of (|grad pred| - |grad true|)^2, gradients by "
                       "Gaussian-derivative filters sigma 1.4, / 1000"),
    "conn": MetricInfo("Conn", "conn", Reduction.SUM, 1e-3,
                       "connectivity error (thresholds in steps of 0.1, the 0.15 rule) summed "
                       "over the region / 1000"),
}


def _check(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} must be equal HxW")


def region_mask(true: np.ndarray, region: Region) -> np.ndarray:
    """Boolean mask of the pixels a region covers."""
    if region is Region.IMAGE:
        return np.ones(true.shape, dtype=bool)
    return (true > 0) & (true < 1)


def reduce(error_map: np.ndarray, mask: np.ndarray, reduction: Reduction) -> float:
    """Sum or mean of a per-pixel error over a region; the mean of an empty region is NaN."""
    values = error_map[mask]
    if reduction is Reduction.SUM:
        return float(values.sum())
    return float(values.mean()) if values.size else math.nan


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def gaussian_derivative_kernels(sigma: float = GRADIENT_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The x and y kernels of the reference ``gaussgradient``: size from a 1e-2 cut-off,
    ``G(y) * dG(x)``, scaled to unit L2 norm (sigma 1.4 gives 9x9)."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    derivative = -u * _gauss(u, sigma) / sigma**2
    hx = np.outer(_gauss(u, sigma), derivative)  # rows: y, columns: x
    hx /= math.sqrt(float(np.square(hx).sum()))
    return hx, hx.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """``|grad alpha|`` by convolution with the derivative-of-Gaussian kernels, borders
    replicated (as MATLAB's ``imfilter(..., 'replicate', 'conv')``)."""
    hx, hy = gaussian_derivative_kernels(sigma)
    src = alpha.astype(np.float64)
    # filter2D correlates; flipping the kernel makes it a convolution.
    gx = cv2.filter2D(src, cv2.CV_64F, cv2.flip(hx, -1), borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(src, cv2.CV_64F, cv2.flip(hy, -1), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def gradient_error_map(pred: np.ndarray, true: np.ndarray,
                       sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """Per pixel ``(|grad pred| - |grad true|)^2``."""
    _check(pred, true)
    return np.square(gradient_magnitude(pred, sigma) - gradient_magnitude(true, sigma))


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean map (all False when there is none)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(binary.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def connectivity_level(pred: np.ndarray, true: np.ndarray,
                       step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """Per pixel, the highest threshold at which it is still in the largest component that both
    mattes share (1 for pixels that stay connected at every threshold)."""
    level = np.full(pred.shape, -1.0)
    thresholds = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    for previous, threshold in pairwise(thresholds):
        connected = _largest_component((pred >= threshold) & (true >= threshold))
        level[(level == -1) & ~connected] = previous
    level[level == -1] = 1.0
    return level


def connectivity_error_map(pred: np.ndarray, true: np.ndarray,
                           step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """Per pixel ``|phi(pred) - phi(true)|`` with ``phi(a) = 1 - d * [d >= 0.15]`` and
    ``d = a - level`` (the level of :func:`connectivity_level`)."""
    _check(pred, true)
    level = connectivity_level(pred, true, step)

    def phi(alpha: np.ndarray) -> np.ndarray:
        d = alpha - level
        return 1.0 - d * (d >= CONNECTIVITY_MIN_DISTANCE)

    return np.abs(phi(pred) - phi(true))


def _clipped(alpha: np.ndarray) -> np.ndarray:
    return np.clip(alpha.astype(np.float64), 0.0, 1.0)


ERROR_MAPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "abs": lambda pred, true: np.abs(pred - true),
    "sq": lambda pred, true: np.square(pred - true),
    "grad": gradient_error_map,
    "conn": connectivity_error_map,
}


def error_maps(pred: np.ndarray, true: np.ndarray,
               names: Iterable[str] = tuple(ERROR_MAPS)) -> dict[str, np.ndarray]:
    """The per-pixel maps the metrics reduce (float64; both inputs clipped to [0, 1] first)."""
    _check(pred, true)
    pred, true = _clipped(pred), _clipped(true)
    return {name: ERROR_MAPS[name](pred, true) for name in names}


def metric(key: str, pred: np.ndarray, true: np.ndarray, region: Region = Region.IMAGE) -> float:
    """One metric on one region, normalised as :data:`METRICS` states."""
    info = METRICS[key]
    error_map = error_maps(pred, true, [info.error_map])[info.error_map]
    mask = region_mask(_clipped(true), region)
    return reduce(error_map, mask, info.reduction) * info.scale


def measure(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Every metric on every region, normalised as :data:`METRICS` states.

    Keys are ``"<metric>_<region>"``, e.g. ``"sad_image"``, ``"mae_band"``; ``"band_px"`` is the
    number of pixels in the transition band.
    """
    maps = error_maps(pred, true)
    true = _clipped(true)
    out: dict[str, float] = {}
    for region in Region:
        mask = region_mask(true, region)
        for key, info in METRICS.items():
            out[f"{key}_{region}"] = reduce(maps[info.error_map], mask, info.reduction) * info.scale
    out["band_px"] = float(region_mask(true, Region.BAND).sum())
    return out
