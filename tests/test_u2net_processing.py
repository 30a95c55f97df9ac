from __future__ import annotations

import numpy as np
import pytest

from mattectl.backends.u2net_processing import (
    BANDED_FROM,
    INPUT_SIZE,
    MEAN,
    STD,
    _resize_banded,
    _resize_blurred,
    normalise,
    postprocess,
    preprocess,
    resize_antialiased,
)


def test_preprocess_shape_and_normalisation() -> None:
    rgb = np.full((50, 80, 3), 128, dtype=np.uint8)
    for resample in ("official", "lanczos"):
        x = preprocess(rgb, resample)
        assert x.shape == (1, 3, INPUT_SIZE, INPUT_SIZE) and x.dtype == np.float32
        # A flat image divided by its maximum is all ones before mean/std.
        np.testing.assert_allclose(x[0, :, 10, 10], (1.0 - MEAN) / STD, rtol=1e-5)


def test_black_image_does_not_divide_by_zero() -> None:
    x = preprocess(np.zeros((40, 40, 3), dtype=np.uint8))
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x[0, :, 0, 0], -MEAN / STD, rtol=1e-5)


def test_antialiasing_removes_a_pattern_finer_than_the_target_grid() -> None:
    stripes = np.zeros((640, 640), dtype=np.float32)
    stripes[:, ::2] = 1.0
    small = resize_antialiased(stripes, 320, 320)
    inner = small[8:-8, 8:-8]
    assert abs(float(inner.mean()) - 0.5) < 0.01
    assert float(inner.std()) < 0.02  # without the low-pass, sampling would alias to 0/1


def test_normalise_guards_a_constant_map() -> None:
    assert not normalise(np.full((4, 4), 0.3, dtype=np.float32)).any()
    out = normalise(np.array([[0.2, 0.6]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.0, 1.0]])


def test_postprocess_returns_alpha_at_photo_size() -> None:
    prediction = np.linspace(0, 1, INPUT_SIZE * INPUT_SIZE, dtype=np.float32).reshape(320, 320)
    for resample in ("official", "lanczos"):
        alpha = postprocess(prediction, 1000, 600, resample)
        assert alpha.shape == (600, 1000) and alpha.dtype == np.float32
        assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
        assert alpha[0, 0] < 0.01 and alpha[-1, -1] > 0.99


@pytest.mark.parametrize("shape", [(1080, 1920, 3),
                                   pytest.param((4000, 6000, 3), marks=pytest.mark.slow),
                                   (401, 643, 3), (640, 640),
                                   (200, 150, 3), (100, 1000, 3)])
def test_banded_reduction_is_the_blur_then_the_bilinear_samples(shape: tuple[int, ...]) -> None:
    # The two ways are one linear operator: they agree to float32 rounding, shrinking (any
    # ratio), enlarging (no blur) and both at once, in colour and grey.
    photo = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    banded = _resize_banded(photo, INPUT_SIZE, INPUT_SIZE)
    blurred = _resize_blurred(photo, INPUT_SIZE, INPUT_SIZE)
    assert banded.shape == blurred.shape == (INPUT_SIZE, INPUT_SIZE, *shape[2:])
    assert banded.dtype == np.float32
    np.testing.assert_allclose(banded, blurred, atol=2e-4)  # of 255
    assert blurred.std() > 1  # not a flat image, where any weighting would agree


def test_large_photos_take_the_banded_way() -> None:
    photo = np.random.default_rng(7).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    assert photo.shape[0] * photo.shape[1] >= BANDED_FROM
    np.testing.assert_array_equal(resize_antialiased(photo, 320, 320),
                                  _resize_banded(photo, 320, 320))
