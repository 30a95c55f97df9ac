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
from mattectl.imageio.options import EdgeMode


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


def ringed_subject() -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured square on blue, a pale patch inside it that the model left at 0.4."""
    pixels = np.zeros((48, 48, 3), np.uint8)
    pixels[:] = (40, 90, 190)
    pixels[8:40, 8:40] = (215, 140, 60)
    pixels[20:28, 20:28] = (245, 245, 245)
    alpha = np.zeros((48, 48), np.float32)
    alpha[8:40, 8:40] = 1
    alpha[20:28, 20:28] = 0.4
    return pixels, alpha


@pytest.mark.parametrize("edges", list(EdgeMode))
def test_holes_are_filled_in_every_edge_mode(edges: EdgeMode) -> None:
    pixels, alpha = ringed_subject()
    cut = layers(pixels, alpha, edges=edges, holes=True, model_side=16)
    np.testing.assert_allclose(cut.alpha[20:28, 20:28], 1, atol=0.02)


def test_without_clean_edges_the_models_alpha_stays_holes_and_all() -> None:
    pixels, alpha = ringed_subject()
    cut = layers(pixels, alpha, clean_edges=False, edges=EdgeMode.MATTING, holes=True)
    np.testing.assert_array_equal(cut.alpha, alpha)


def test_matting_gives_the_band_the_subjects_colour() -> None:
    """A soft edge between a red subject and a blue backdrop: the mixed pixels' colour comes
    out nearer the subject's red than the photo's purple mix."""
    ramp = np.clip((np.arange(64, dtype=np.float32) - 24) / 16, 0, 1)
    truth = np.tile(1 - ramp, (40, 1))
    subject, backdrop = np.float32([220, 40, 30]), np.float32([30, 60, 220])
    pixels = np.round(truth[..., None] * subject + (1 - truth[..., None]) * backdrop)
    pixels = pixels.astype(np.uint8)
    cut = layers(pixels, truth, edges=EdgeMode.MATTING)
    mixed = (cut.alpha > 0.3) & (cut.alpha < 0.7)
    assert mixed.any()
    assert cut.colour[mixed][:, 0].mean() > pixels[mixed][:, 0].mean() + 30


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
