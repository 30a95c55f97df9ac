"""Clean edges on composites with a known truth (the full measurement: scripts/measure_edges.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mattectl.imageio.edges import Band, edge_band, estimate_foreground, refine_alpha


def soft_disc(size: int = 200) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((size * 0.3 - distance) / 8 + 0.5, 0, 1).astype(np.float32)


def test_foreground_colour_replaces_the_old_background_in_soft_edges() -> None:
    alpha = soft_disc()
    fg_colour = np.array([0.9, 0.6, 0.4], np.float32)  # skin-like subject
    bg_colour = np.array([0.0, 0.8, 0.2], np.float32)  # green screen
    a = alpha[:, :, None]
    image = a * fg_colour + (1 - a) * bg_colour
    estimated = estimate_foreground(image, alpha)
    edge = (alpha > 0.1) & (alpha < 0.9)
    before = np.abs(image[edge] - fg_colour).mean()
    after = np.abs(estimated[edge] - fg_colour).mean()
    assert after < before / 5
    np.testing.assert_allclose(estimated[alpha >= 254.5 / 255], image[alpha >= 254.5 / 255])


def test_refined_alpha_follows_a_crisp_edge_in_the_photo() -> None:
    size, model = 640, 80  # the alpha comes from a model that saw 80x80
    truth = np.zeros((size, size), np.float32)
    truth[:, :size // 2 + 3] = 1.0
    image = np.where(truth[:, :, None] > 0.5, np.float32([0.8, 0.3, 0.2]),
                     np.float32([0.1, 0.3, 0.9])).astype(np.float32)
    small = cv2.resize(truth, (model, model), interpolation=cv2.INTER_AREA)
    upscaled = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    refined = refine_alpha(image, upscaled, size / model)
    before = np.abs(upscaled - truth).mean()
    after = np.abs(refined - truth).mean()
    assert after < before / 3


def test_refinement_leaves_the_alpha_where_subject_and_background_look_alike() -> None:
    size = 320
    truth = np.zeros((size, size), np.float32)
    truth[:, : size // 2] = 1.0
    image = np.full((size, size, 3), 0.5, np.float32)  # nothing to tell them apart
    upscaled = cv2.GaussianBlur(truth, (0, 0), 6)
    np.testing.assert_allclose(refine_alpha(image, upscaled, 8.0), upscaled, atol=1e-4)


def test_opaque_and_empty_alphas_are_unchanged() -> None:
    image = np.random.default_rng(0).random((50, 70, 3), dtype=np.float32)
    for value in (0.0, 1.0):
        alpha = np.full((50, 70), value, np.float32)
        np.testing.assert_array_equal(refine_alpha(image, alpha, 4.0), alpha)
        np.testing.assert_array_equal(estimate_foreground(image, alpha), image)


def test_edge_band_is_strictly_inside_its_bounds_in_row_major_order() -> None:
    alpha = np.float32([[0.0, 0.01, 0.0101, 0.5],
                        [0.98, 0.99, 1.0, 0.2]])
    band = edge_band(alpha)
    assert list(zip(band.rows.tolist(), band.cols.tolist(), strict=True)) == [
        (0, 2), (0, 3), (1, 0), (1, 3)]
    np.testing.assert_array_equal(band.flat, [2, 3, 4, 7])
    assert len(edge_band(np.zeros((3, 3), np.float32))) == 0


def test_band_takes_and_puts_the_same_pixels() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    mask = rng.random((5, 7)) > 0.5
    band = Band(mask)
    np.testing.assert_array_equal(band.take(image), image[mask])
    out = np.zeros_like(image)
    band.put(out, band.take(image))
    np.testing.assert_array_equal(out[mask], image[mask])
    assert not out[~mask].any()
    with pytest.raises(ValueError, match="contiguous"):
        band.put(np.zeros((7, 5, 3), np.uint8).transpose(1, 0, 2), band.take(image))


def test_refinement_reaches_the_last_pixels_of_a_size_the_factor_does_not_divide() -> None:
    # 643x401 from an 80-pixel model: local colours come from the photo reduced 5 times
    # (643 = 5 * 128 + 3, 401 = 5 * 80 + 1), the last reduced pixels padded.
    height, width, model = 401, 643, 80
    truth = np.zeros((height, width), np.float32)
    truth[:, width - 12:] = 1.0  # the subject's edge 12 pixels from the right border
    truth[height - 20:, :] = 1.0  # and 20 (2.5 model pixels) from the bottom
    image = np.where(truth[:, :, None] > 0.5, np.float32([0.9, 0.8, 0.1]),
                     np.float32([0.1, 0.2, 0.7])).astype(np.float32)
    small = cv2.resize(truth, (model, round(model * height / width)), interpolation=cv2.INTER_AREA)
    upscaled = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    refined = refine_alpha(image, upscaled, width / model)
    border = np.zeros_like(truth, bool)
    border[:, width - 24:] = True
    border[height - 32:, :] = True
    assert np.abs(refined - truth)[border].mean() < np.abs(upscaled - truth)[border].mean() / 3
