"""Clean edges on composites with a known truth (the full measurement: scripts/measure_edges.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mattectl.imageio import edges
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


def test_strips_of_a_mask_together_are_its_band_in_order() -> None:
    mask = np.random.default_rng(2).random((37, 23)) > 0.6
    mask[12:16] = False  # an empty strip is left out
    whole = Band(mask)
    strips = list(Band.strips(mask, pixels=23 * 4))
    assert len(strips) == 9
    for got, want in ((np.concatenate([s.rows for s in strips]), whole.rows),
                      (np.concatenate([s.cols for s in strips]), whole.cols),
                      (np.concatenate([s.flat for s in strips]), whole.flat)):
        np.testing.assert_array_equal(got, want)
    assert all(s.shape == (37, 23) for s in strips)


def test_clean_edges_are_the_same_in_strips_of_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (301, 257, 3), dtype=np.uint8)
    small = cv2.GaussianBlur((rng.random((40, 34)) > 0.5).astype(np.float32), (0, 0), 2)
    alpha = cv2.resize(np.clip((small - 0.5) * 4 + 0.5, 0, 1), (257, 301))
    results = []
    for strip in (1 << 30, 1000, 1):  # one band, strips of 3 rows, a row at a time
        monkeypatch.setattr(edges, "STRIP_PIXELS", strip)
        results.append((refine_alpha(image, alpha, 301 / 40),
                        estimate_foreground(image.astype(np.float32) / 255, alpha)))
    for refined, foreground in results[1:]:
        np.testing.assert_array_equal(refined, results[0][0])
        np.testing.assert_array_equal(foreground, results[0][1])


def peak_rss_kb() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def test_a_frame_uncertain_everywhere_takes_memory_for_a_strip_not_the_frame() -> None:
    # A flat or foggy photo: the model's alpha is uncertain everywhere, the band is the whole
    # frame. Worked whole, the band's temporaries took about 95 bytes per pixel at the peak.
    height, width = 2000, 3000
    image = np.random.default_rng(5).integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = np.full((height, width), 0.5, np.float32)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("no /proc/self/clear_refs here: the peak RSS cannot be measured")
    before = peak_rss_kb()
    refined = refine_alpha(image, alpha, width / 320)
    colour = np.array(image, order="C")
    for band, values in edges.foreground_strips(image, refined):
        band.put(colour, values * 255)
    grown = peak_rss_kb() - before
    # Bytes per pixel: the results, a few masks and one strip's temporaries (about 80 MB).
    assert grown * 1024 / (height * width) < 45
