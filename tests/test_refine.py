"""Alpha matting of the uncertain band, and hole filling, on small synthetic photos whose true
alpha is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mattectl.imageio import refine

SUBJECT = np.array([0.85, 0.55, 0.25], np.float32)  # skin-like
BACKGROUND = np.array([0.15, 0.35, 0.75], np.float32)  # a blue backdrop


def composite(alpha: np.ndarray, fg: np.ndarray = SUBJECT,
              bg: np.ndarray = BACKGROUND) -> np.ndarray:
    """HxWx3 uint8: ``I = a F + (1 - a) B``."""
    a = alpha[..., None]
    return np.round((a * fg + (1 - a) * bg) * 255).astype(np.uint8)


def hairy_disc(height: int = 72, width: int = 96) -> np.ndarray:
    """True alpha: a disc with a one-pixel soft rim and thin half-transparent strands."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    r = np.hypot(yy - height / 2, xx - width / 2)
    alpha = np.clip(22 - r, 0, 1)
    for angle in np.linspace(0.3, 2.8, 6):
        end = (int(width / 2 + 34 * np.cos(angle)), int(height / 2 - 34 * np.sin(angle)))
        strand = np.zeros_like(alpha)
        cv2.line(strand, (width // 2, height // 2), end, 0.5, 1)
        alpha = np.maximum(alpha, strand)
    return alpha


def coarse(alpha: np.ndarray, factor: int = 6) -> np.ndarray:
    """What a model at 1/``factor`` of the resolution gives: the truth reduced and enlarged."""
    small = cv2.resize(alpha, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, alpha.shape[::-1], interpolation=cv2.INTER_LINEAR)


def sad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum())


def test_band_radius_follows_the_subjects_size_within_bounds() -> None:
    small, large = np.zeros((400, 400), np.float32), np.zeros((400, 400), np.float32)
    small[190:210, 190:210] = 1
    large[50:350, 50:350] = 1
    assert refine.band_radius(small) == refine.MIN_BAND
    assert refine.band_radius(large) == round(refine.BAND_SHARE * 300)
    huge = np.ones((4000, 4000), np.float32)
    assert refine.band_radius(huge) == refine.MAX_BAND


def test_trimap_has_sure_subject_sure_background_and_a_band_between() -> None:
    alpha = coarse(hairy_disc())
    tri = refine.trimap(alpha, 3)
    assert set(np.unique(tri)) == {refine.FG, refine.BG, refine.UNKNOWN}
    assert tri[36, 48] == refine.FG and tri[0, 0] == refine.BG
    # every partial pixel is unknown, and sure pixels lie 3 pixels deep from any partial one
    assert (tri[(alpha > 0.05) & (alpha < 0.95)] == refine.UNKNOWN).all()
    partial = ((alpha > 0.05) & (alpha < 0.95)).astype(np.uint8)
    near = cv2.dilate(partial, refine._disc(3)) > 0
    assert (tri[near] == refine.UNKNOWN).all()


def test_tiles_cover_the_unknown_pixels_once() -> None:
    unknown = np.zeros((100, 130), bool)
    unknown[10:90, 40:45] = True
    unknown[50, 120] = True
    seen = np.zeros(unknown.shape, int)
    for core, padded in refine.tiles(unknown, 32, 5):
        seen[core] += 1
        assert padded[0].start <= core[0].start and padded[0].stop >= core[0].stop
    assert (seen[unknown] == 1).all()
    assert seen.max() == 1


@pytest.mark.parametrize(("solver", "share"), [(refine.Solver.CF, 0.6),
                                               (refine.Solver.GUIDED, 0.97)])
def test_matting_the_band_comes_closer_to_the_truth(solver: refine.Solver, share: float
                                                    ) -> None:
    truth = hairy_disc()
    image = composite(truth)
    model = coarse(truth)
    refined = refine.refine_matting(image, model, solver=solver)
    assert refined.alpha.shape == truth.shape and refined.alpha.dtype == np.float32
    assert refined.alpha.min() >= 0 and refined.alpha.max() <= 1
    assert sad(refined.alpha, truth) < share * sad(model, truth)
    assert refined.band.any() and not refined.band[0, 0]  # the sure background is no band


def test_closed_form_recovers_the_strands() -> None:
    truth = hairy_disc()
    model = coarse(truth)
    refined = refine.refine_matting(composite(truth), model).alpha
    strands = (truth == 0.5)
    # the model blurs the strands away; the solver finds them from their colour
    assert abs(float(model[strands].mean()) - 0.5) > 0.3
    assert abs(float(refined[strands].mean()) - 0.5) < 0.15


def test_a_large_photo_is_solved_at_a_reduced_resolution_and_still_improves() -> None:
    truth = cv2.resize(hairy_disc(), (192, 144), interpolation=cv2.INTER_LINEAR)
    image, model = composite(truth), coarse(truth, 10)
    assert refine.work_scale(144, 192, work_pixels=144 * 192 / 4) == pytest.approx(0.5)
    refined = refine.refine_matting(image, model, work_pixels=144 * 192 / 4)
    assert refined.alpha.shape == truth.shape
    assert sad(refined.alpha, truth) < 0.8 * sad(model, truth)


def test_refinement_is_deterministic() -> None:
    truth = hairy_disc()
    image, model = composite(truth), coarse(truth)
    first = refine.refine_matting(image, model).alpha
    np.testing.assert_array_equal(first, refine.refine_matting(image, model).alpha)


def test_an_alpha_without_uncertain_pixels_stays() -> None:
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1
    refined = refine.refine_matting(composite(alpha), alpha)
    # the band around a hard edge is still solved; a flat subject keeps its shape
    np.testing.assert_allclose(refined.alpha, alpha, atol=0.02)


def subject_with(patch: np.ndarray, patch_colour: np.ndarray, patch_alpha: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.zeros((60, 80), np.float32)
    cv2.ellipse(alpha, (40, 30), (30, 22), 0, 0, 360, 1.0, -1)
    colour = np.empty((60, 80, 3), np.float32)
    colour[:] = BACKGROUND
    colour[alpha > 0] = SUBJECT
    colour[patch] = patch_colour
    alpha[patch] = patch_alpha
    return np.round(colour * 255).astype(np.uint8), alpha


def test_a_pale_patch_inside_the_subject_is_made_opaque() -> None:
    patch = np.zeros((60, 80), bool)
    patch[25:35, 30:45] = True  # a white shirt the model left at 0.4
    image, alpha = subject_with(patch, np.array([0.95, 0.95, 0.95], np.float32), 0.4)
    filled = refine.fill_holes(image, alpha)
    assert (filled[patch] == 1).all()
    np.testing.assert_array_equal(filled[~patch], alpha[~patch])
    truth = np.where(patch, 1.0, alpha).astype(np.float32)
    assert refine.interior_holes(alpha, truth) == 1
    assert refine.interior_holes(filled, truth) == 0


def test_an_enclosed_gap_that_shows_the_background_stays_transparent() -> None:
    patch = np.zeros((60, 80), bool)
    patch[25:35, 30:45] = True  # the background seen between an arm and the body
    image, alpha = subject_with(patch, BACKGROUND, 0.0)
    np.testing.assert_array_equal(refine.fill_holes(image, alpha), alpha)


def test_partial_pixels_open_to_the_background_are_no_hole() -> None:
    patch = np.zeros((60, 80), bool)
    patch[25:35, 60:80] = True  # from inside the subject out to the frame's edge
    image, alpha = subject_with(patch, np.array([0.95, 0.95, 0.95], np.float32), 0.4)
    alpha[25:35, 70:80] = 0  # meeting the background at the edge
    assert not refine.enclosed(alpha).any()
    np.testing.assert_array_equal(refine.fill_holes(image, alpha), alpha)


def test_a_subject_cut_by_the_frame_encloses_its_holes_with_the_frame() -> None:
    alpha = np.zeros((40, 40), np.float32)
    alpha[:, 20:] = 1
    alpha[15:25, 30:40] = 0.3  # pale, touching the frame's edge only where the subject does
    assert refine.enclosed(alpha)[20, 39]


def test_a_frame_without_sure_pixels_keeps_the_models_alpha() -> None:
    """A foggy photo: the alpha uncertain everywhere, no known pixel to solve from."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    model = np.full((40, 56), 0.5, np.float32)
    refined = refine.refine_matting(image, model)
    assert np.isfinite(refined.alpha).all()
    np.testing.assert_allclose(refined.alpha, model, atol=0.05)


def test_a_band_too_wide_is_solved_at_a_lower_resolution(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    truth = hairy_disc()
    image, model = composite(truth), coarse(truth)
    full = refine.trimap(model, refine.band_radius(model))
    assert np.count_nonzero(full == refine.UNKNOWN) > 1000
    monkeypatch.setattr(refine, "MAX_UNKNOWN", 1000)
    solved: list[int] = []
    real = refine.solve_cf

    def counting(image: np.ndarray, tri: np.ndarray, *args: object) -> np.ndarray:
        solved.append(int(np.count_nonzero(tri == refine.UNKNOWN)))
        return real(image, tri, *args)

    monkeypatch.setattr(refine, "solve_cf", counting)
    refined = refine.refine_matting(image, model)
    assert refined.alpha.shape == truth.shape
    assert 0 < sum(solved) <= 1000
    assert sad(refined.alpha, truth) < sad(model, truth)


def test_without_background_in_sight_nothing_is_filled() -> None:
    """A frame the subject fills to every edge, its alpha partial in a wide region: no
    background colour to compare with, and no hole of a subject's size."""
    alpha = np.full((40, 40), 0.95, np.float32)
    alpha[5:35, 5:35] = 0.3
    image = composite(alpha)
    np.testing.assert_array_equal(refine.fill_holes(image, alpha), alpha)
    assert not refine.enclosed(alpha).any()  # bigger than the opaque ring around it


def test_tiles_leave_no_seam_where_they_meet() -> None:
    # A wide soft edge across the frame over textured colours: each tile's solution depends on
    # where its context is cut, so cores laid edge to edge used to step at their boundary.
    yy, xx = np.mgrid[:200, :300].astype(np.float32)
    truth = np.clip((120 - yy) / 60 + 0.3 * np.sin(xx / 7), 0, 1).astype(np.float32)
    fg = np.stack([0.2 + 0.6 * np.sin(xx / 13) ** 2, 0.3 + 0.2 * np.cos(yy / 9),
                   np.full_like(xx, 0.5)], -1)
    bg = np.stack([0.4 + 0.3 * np.cos(xx / 11 + yy / 17), 0.5 + 0.3 * np.sin(yy / 5),
                   0.3 + 0.3 * np.sin(xx / 19)], -1)
    a = truth[..., None]
    image = np.round((a * fg + (1 - a) * bg) * 255).astype(np.uint8)
    model = cv2.GaussianBlur(truth, (0, 0), 6)
    whole = refine.refine_matting(image, model).alpha  # one tile
    tiled = refine.refine_matting(image, model, tile=100)
    band = tiled.band > 0
    for column in (100, 200):
        rows = band[:, column] & band[:, column - 1]
        step = np.abs(tiled.alpha[:, column] - tiled.alpha[:, column - 1])[rows].mean()
        smooth = np.abs(whole[:, column] - whole[:, column - 1])[rows].mean()
        assert step < 1.5 * smooth + 1e-3  # no step beyond the picture's own
    assert np.abs(whole - tiled.alpha).max() < 0.05
