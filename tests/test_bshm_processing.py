"""BSHM's pure pre- and post-processing (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from mattectl.backends.bshm_processing import model_size, postprocess, preprocess


@pytest.mark.parametrize(("size", "expected"), [
    ((1920, 1080), (1920, 1080)),  # under the limit: untouched
    ((2000, 1500), (2000, 1500)),  # at the limit
    ((6000, 4000), (2000, 1333)),  # landscape: long side to 2000, aspect kept
    ((4000, 6000), (1333, 2000)),  # portrait
    ((20000, 5), (2000, 1)),  # never below one pixel
])
def test_model_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert model_size(*size, max_side=2000) == expected


def test_preprocess_keeps_rgb_values_and_only_reduces_when_needed() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    same = preprocess(rgb, max_side=40)
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, rgb.astype(np.float32))  # 0..255, no normalisation
    flat = np.zeros((300, 400, 3), np.uint8)
    flat[..., 0], flat[..., 2] = 200, 50
    small = preprocess(flat, max_side=100)
    assert small.shape == (75, 100, 3)
    np.testing.assert_allclose(small[..., 0], 200)  # channel order and scale survive the resize
    np.testing.assert_allclose(small[..., 2], 50)


def test_postprocess_takes_channel_3_and_restores_the_size() -> None:
    out = np.zeros((50, 100, 4), np.uint8)
    out[..., :3] = 255  # RGB of the output is ignored
    out[:, 50:, 3] = 255
    alpha = postprocess(out, 200, 100)
    assert alpha.shape == (100, 200)
    assert alpha.dtype == np.float32
    assert alpha[:, :90].max() == 0.0
    assert alpha[:, 110:].min() == 1.0
    np.testing.assert_array_equal(postprocess(out, 100, 50), out[..., 3] / np.float32(255))


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5, 4), np.float32),
                                 np.zeros((5, 5), np.uint8)])
def test_postprocess_refuses_what_bshm_does_not_return(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected HxWx4 uint8 RGBA"):
        postprocess(bad, 5, 5)
