"""What a person looks at in the report: cutouts over a checkerboard and error heat maps (numpy)."""

from __future__ import annotations

import numpy as np

CHECKER_LIGHT = 204
CHECKER_DARK = 153
FLAT_GREY = 128

# Anchors of a perceptually ordered dark-to-bright map (black, purple, red, orange, pale yellow):
# small errors stay dark, large ones glow, and the order survives printing in grey.
_HEAT_ANCHORS = np.array([
    [0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164],
], dtype=np.float32)


def checkerboard(height: int, width: int, cell: int = 12) -> np.ndarray:
    """``HxWx3`` uint8 grey checkerboard, the usual picture of transparency."""
    yy, xx = np.mgrid[:height, :width]
    dark = ((yy // cell) + (xx // cell)) % 2 == 1
    board = np.where(dark, CHECKER_DARK, CHECKER_LIGHT).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def over_checkerboard(rgb: np.ndarray, alpha: np.ndarray, cell: int = 12) -> np.ndarray:
    """The photo cut out by ``alpha`` (``HxW`` in [0, 1]) and laid over a checkerboard."""
    if rgb.shape[:2] != alpha.shape:
        raise ValueError(f"photo {rgb.shape[:2]} and alpha {alpha.shape} differ in size")
    board = checkerboard(*alpha.shape, cell=cell).astype(np.float32)
    a = np.clip(alpha, 0, 1)[:, :, None].astype(np.float32)
    return np.clip(rgb * a + board * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def over_grey(rgb: np.ndarray, alpha: np.ndarray, level: int = FLAT_GREY) -> np.ndarray:
    """The photo cut out by ``alpha`` (``HxW`` in [0, 1]) and laid over a flat grey: at 100 %
    a checkerboard's cells would read as strands, a flat ground shows halos and gaps as they are."""
    if rgb.shape[:2] != alpha.shape:
        raise ValueError(f"photo {rgb.shape[:2]} and alpha {alpha.shape} differ in size")
    a = np.clip(alpha, 0, 1)[:, :, None].astype(np.float32)
    return np.clip(rgb * a + np.float32(level) * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def heat_map(error: np.ndarray) -> np.ndarray:
    """``HxW`` error in [0, 1] (e.g. ``|pred - truth|``) -> ``HxWx3`` uint8 colours, 0 black."""
    position = np.clip(error, 0, 1).astype(np.float32) * (len(_HEAT_ANCHORS) - 1)
    low = np.minimum(position.astype(np.int32), len(_HEAT_ANCHORS) - 2)
    t = (position - low)[:, :, None]
    colours = _HEAT_ANCHORS[low] * (1 - t) + _HEAT_ANCHORS[low + 1] * t
    return (colours + 0.5).astype(np.uint8)


def grey(alpha: np.ndarray) -> np.ndarray:
    """A matte as an ``HxWx3`` uint8 grey picture (white = subject)."""
    value = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(value[:, :, None], 3, axis=2)
