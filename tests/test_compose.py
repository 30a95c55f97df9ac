"""Compositing: layers, trim box, flatten, quantise (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from mattectl.imageio.compose import (
    Layers,
    cutout_rgba,
    flatten,
    layers,
    quantise,
    rgba,
    trim_box,
)


def test_quantise_rounds_to_nearest_and_clips() -> None:
    values = np.array([-0.1, 0.0, 0.5 / 255, 0.5, 1.0, 1.2], np.float32)
    np.testing.assert_array_equal(quantise(values, np.dtype(np.uint8)), [0, 0, 1, 128, 255, 255])
    assert quantise(np.float32([1.0]), np.dtype(np.uint16))[0] == 65535


def test_quantise_scales_without_float32_rounding() -> None:
    # float32(0.9) is 0.89999998: times 65535 that is 58981.498, which rounds to 58981; a
    # float32 product (58981.5) would round up.
    assert quantise(np.float32([0.9]), np.dtype(np.uint16))[0] == 58981


def test_quantise_scales_every_channel_and_keeps_the_shape() -> None:
    values = np.float32([[[0.0, 0.5, 1.0], [1.0, 0.2, 0.0]]])  # 1x2x3
    out = quantise(values, np.dtype(np.uint8))
    assert out.shape == (1, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[0, 128, 255], [255, 51, 0]]])
    assert quantise(np.zeros((0, 3), np.float32), np.dtype(np.uint8)).shape == (0, 3)


def test_trim_box_clamps_the_margin_to_the_image() -> None:
    alpha = np.zeros((10, 20), np.float32)
    alpha[2:5, 15:19] = 0.5
    assert trim_box(alpha, 0) == (2, 5, 15, 19)
    assert trim_box(alpha, 3) == (0, 8, 12, 20)
    assert trim_box(np.zeros((4, 4), np.float32), 2) is None


def test_source_alpha_multiplies_without_clean_edges() -> None:
    pixels = np.full((2, 2, 3), 9, np.uint8)
    cut = layers(pixels, np.full((2, 2), 0.5, np.float32),
                 source_alpha=np.float32([[1, 0], [0.5, 1]]), clean_edges=False)
    np.testing.assert_allclose(cut.alpha, [[0.5, 0], [0.25, 0.5]])
    assert cut.colour is pixels


def test_rgba_converts_depth() -> None:
    cut = Layers(np.full((1, 1, 3), 65535, np.uint16), np.float32([[1.0]]))
    np.testing.assert_array_equal(rgba(cut, np.dtype(np.uint8))[0, 0], (255, 255, 255, 255))
    eight = Layers(np.full((1, 1, 3), 255, np.uint8), np.float32([[0.0]]))
    np.testing.assert_array_equal(rgba(eight, np.dtype(np.uint16))[0, 0], (65535,) * 3 + (0,))


def test_flatten_mixes_by_alpha() -> None:
    cut = Layers(np.array([[[200, 100, 0]] * 3], np.uint8), np.float32([[1.0, 0.5, 0.0]]))
    np.testing.assert_allclose(flatten(cut, (0, 0, 255)),
                               [[[200, 100, 0], [100, 50, 127.5], [0, 0, 255]]], atol=0.5)


def test_sizes_must_match() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        cutout_rgba(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.float32))
