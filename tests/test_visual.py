"""The pictures of the report: checkerboard compositing and the error colour map."""

from __future__ import annotations

import numpy as np

from mattectl.evaluation import visual


def test_checkerboard_alternates_cells() -> None:
    board = visual.checkerboard(24, 24, cell=12)
    assert board[0, 0, 0] == visual.CHECKER_LIGHT
    assert board[0, 12, 0] == visual.CHECKER_DARK
    assert board[12, 12, 0] == visual.CHECKER_LIGHT


def test_alpha_picks_photo_or_board() -> None:
    rgb = np.full((24, 24, 3), 10, np.uint8)
    alpha = np.zeros((24, 24), np.float32)
    alpha[:, 12:] = 1.0
    out = visual.over_checkerboard(rgb, alpha, cell=12)
    np.testing.assert_array_equal(out[:, 12:], rgb[:, 12:])
    np.testing.assert_array_equal(out[:, :12], visual.checkerboard(24, 24, 12)[:, :12])


def test_heat_map_runs_from_black_to_bright_and_grows_brighter() -> None:
    ramp = np.linspace(0, 1, 101, dtype=np.float32)[None, :]
    colours = visual.heat_map(ramp)[0].astype(np.float32)
    assert colours[0].tolist() == [0, 0, 4]
    assert colours[-1].tolist() == [252, 255, 164]
    brightness = colours @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.all(np.diff(brightness) >= -1e-3)


def test_over_grey_lays_the_cutout_on_flat_grey() -> None:
    rgb = np.full((4, 6, 3), 10, np.uint8)
    alpha = np.zeros((4, 6), np.float32)
    alpha[:, 3:] = 1.0
    alpha[0, 0] = 0.5
    out = visual.over_grey(rgb, alpha)
    np.testing.assert_array_equal(out[:, 3:], rgb[:, 3:])
    assert out[1, 0].tolist() == [visual.FLAT_GREY] * 3
    assert out[0, 0].tolist() == [69] * 3  # 10 * 0.5 + 128 * 0.5, rounded
