"""The matting metrics on hand-computed cases and on the properties they must have."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from mattectl.evaluation import metrics
from mattectl.evaluation.metrics import Region, measure, metric


def disc(size: int = 64, radius: float = 20.0, soft: float = 3.0) -> np.ndarray:
    """A soft-edged disc: a truth with a real transition band."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((radius - r) / soft + 0.5, 0.0, 1.0)


TRUTH_2X2 = np.array([[0.0, 1.0], [0.5, 1.0]])
PRED_2X2 = np.array([[0.5, 1.0], [0.5, 0.0]])


def test_sad_mse_mae_by_hand() -> None:
    # |errors| = 0.5, 0, 0, 1 over 4 pixels; only the 0.5 truth pixel is in the band.
    assert metric("sad", PRED_2X2, TRUTH_2X2) == pytest.approx(1.5 / 1000)
    assert metric("mse", PRED_2X2, TRUTH_2X2) == pytest.approx((0.25 + 1.0) / 4 * 1000)
    assert metric("mae", PRED_2X2, TRUTH_2X2) == pytest.approx(1.5 / 4 * 1000)
    assert metric("sad", PRED_2X2, TRUTH_2X2, Region.BAND) == 0.0
    assert metric("mse", PRED_2X2, TRUTH_2X2, Region.BAND) == 0.0


def test_band_is_where_the_truth_is_strictly_between_0_and_1() -> None:
    truth = np.array([[0.0, 0.2, 1.0, 0.999]])
    assert metrics.region_mask(truth, Region.BAND).tolist() == [[False, True, False, True]]
    pred = truth + np.array([[0.1, 0.1, -0.1, 0.0]])
    assert metric("sad", pred, truth, Region.BAND) == pytest.approx(0.1 / 1000)
    assert metric("mae", pred, truth, Region.BAND) == pytest.approx(0.1 / 2 * 1000)


def test_a_mean_over_an_empty_band_is_nan_and_a_sum_is_zero() -> None:
    hard = (disc(soft=1e-9) > 0.5).astype(float)
    result = measure(1 - hard, hard)
    assert result["band_px"] == 0
    assert math.isnan(result["mse_band"])
    assert math.isnan(result["mae_band"])
    assert result["sad_band"] == 0.0
    assert result["sad_image"] == pytest.approx(hard.size / 1000)


def test_connectivity_by_hand() -> None:
    # Truth all ones; the prediction misses pixel 2. The intersection's largest 4-component is
    # pixels 0-1, so pixels 2 and 3 lose connection at the first threshold (level 0).
    # pred - level = [0, 0, 0, 1] -> phi = [1, 1, 1, 0]; truth - level = [0, 0, 1, 1] ->
    # phi = [1, 1, 0, 0]; |difference| sums to 1.
    truth = np.ones((1, 4))
    pred = np.array([[1.0, 1.0, 0.0, 1.0]])
    assert metrics.connectivity_level(pred, truth).tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert metrics.connectivity_error_map(pred, truth).sum() == pytest.approx(1.0)
    # A 0.5 in pixel 3: still cut off, and 0.5 >= 0.15 counts: phi = 0.5 there, 1 + 0.5 in all.
    pred = np.array([[1.0, 1.0, 0.0, 0.5]])
    assert metrics.connectivity_error_map(pred, truth).sum() == pytest.approx(1.5)
    assert metric("conn", pred, truth) == pytest.approx(1.5 / 1000)


def test_connectivity_0_15_rule() -> None:
    # A departure below 0.15 from the connection level counts as fully connected (phi = 1).
    truth = np.ones((1, 4))
    pred = np.array([[1.0, 1.0, 0.0, 0.1]])
    # pixel 3: pred - 0 = 0.1 < 0.15 -> phi 1, truth phi 0 -> 1; pixel 2 as before -> 1.
    assert metrics.connectivity_error_map(pred, truth).sum() == pytest.approx(2.0)


def test_gradient_kernels_are_the_reference_ones() -> None:
    hx, hy = metrics.gaussian_derivative_kernels(1.4)
    assert hx.shape == (9, 9)  # half size ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = 4
    assert np.square(hx).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(hx, -hx[:, ::-1])  # odd along x
    np.testing.assert_allclose(hx, hx[::-1, :])  # even along y
    np.testing.assert_allclose(hy, hx.T)
    # One entry by hand: G(y=1) * dG(x=1) / norm, with dG(x) = -x G(x) / sigma^2.
    g = lambda v: math.exp(-v * v / (2 * 1.4**2)) / (1.4 * math.sqrt(2 * math.pi))  # noqa: E731
    u = np.arange(-4, 5)
    norm = math.sqrt(sum((g(y) * -x * g(x) / 1.4**2) ** 2 for y in u for x in u))
    assert hx[5, 5] == pytest.approx(g(1) * -1 * g(1) / 1.4**2 / norm)


def test_gradient_of_a_ramp_is_its_slope_times_the_kernel_moment() -> None:
    # Convolving c*x with the kernel gives c * sum(-x h(y, x)) away from the borders.
    hx, _ = metrics.gaussian_derivative_kernels()
    moment = float(-(hx * np.arange(-4, 5)[None, :]).sum())
    ramp = np.tile(np.linspace(0, 1, 41), (30, 1))
    magnitude = metrics.gradient_magnitude(ramp)
    np.testing.assert_allclose(magnitude[10:20, 10:30], moment / 40, rtol=1e-9)


def test_gradient_error_of_a_halved_matte() -> None:
    # The filters are linear: |grad(t/2)| = |grad t| / 2, so the error is sum(|grad t|^2) / 4.
    truth = disc()
    expected = float(np.square(metrics.gradient_magnitude(truth)).sum()) / 4
    assert metric("grad", truth / 2, truth) == pytest.approx(expected / 1000)


@pytest.mark.parametrize("key", list(metrics.METRICS))
@pytest.mark.parametrize("region", list(Region))
def test_a_perfect_prediction_scores_zero(key: str, region: Region) -> None:
    truth = disc()
    assert metric(key, truth.copy(), truth, region) == 0.0


@pytest.mark.parametrize("key", list(metrics.METRICS))
def test_whole_image_metrics_are_symmetric(key: str) -> None:
    a = disc(radius=20)
    b = np.roll(disc(radius=16, soft=6), 5, axis=1)
    assert metric(key, a, b) > 0
    assert metric(key, a, b) == pytest.approx(metric(key, b, a))


def test_blending_towards_a_wrong_matte_grows_as_hand_derived() -> None:
    # pred = (1 - t) truth + t wrong: the error is t (wrong - truth), so SAD and MAE grow as t and
    # MSE as t^2.
    truth, wrong = disc(radius=20), np.roll(disc(radius=12), 9, axis=0)
    full = {key: metric(key, wrong, truth) for key in ("sad", "mae", "mse")}
    for t in (0.25, 0.5, 0.75):
        pred = (1 - t) * truth + t * wrong
        assert metric("sad", pred, truth) == pytest.approx(t * full["sad"])
        assert metric("mae", pred, truth) == pytest.approx(t * full["mae"])
        assert metric("mse", pred, truth) == pytest.approx(t * t * full["mse"])


@pytest.mark.parametrize("key", list(metrics.METRICS))
def test_every_metric_grows_with_a_growing_false_blob(key: str) -> None:
    truth = disc(size=96, radius=20)
    values = []
    for side in (0, 4, 8, 16):
        pred = truth.copy()
        pred[2:2 + side, 2:2 + side] = 1.0  # a detached blob in the background
        values.append(metric(key, pred, truth))
    assert values[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(values)), values


@pytest.mark.parametrize("key", ["sad", "mse", "mae", "grad"])
def test_edge_metrics_grow_as_the_prediction_blurs(key: str) -> None:
    truth = disc(size=96, radius=24, soft=1.5)
    values = [metric(key, cv2.GaussianBlur(truth, (0, 0), sigma), truth, Region.BAND)
              for sigma in (0.5, 2.0, 4.0, 8.0)]
    assert all(a < b for a, b in itertools.pairwise(values)), values


def test_measure_reports_every_metric_on_both_regions() -> None:
    truth = disc()
    result = measure(np.roll(truth, 3, axis=1), truth)
    assert set(result) == {f"{k}_{r}" for k in metrics.METRICS for r in Region} | {"band_px"}
    assert result["band_px"] == metrics.region_mask(truth, Region.BAND).sum() > 0
    assert all(v > 0 for v in result.values())
    # A band metric that sums can only be smaller than the same sum over the whole image.
    assert result["sad_band"] < result["sad_image"]


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="equal"):
        measure(np.zeros((4, 4)), np.zeros((4, 5)))
