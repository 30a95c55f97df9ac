"""The hair at 100 %: per photo, one window of the full-resolution frame (never resized) where
the truth is most uncertain, cut from the photo, from each prediction and from the truth.

The window is the ``side x side`` square holding the most pixels whose true alpha is partial
(strictly between :data:`LOW` and :data:`HIGH`): hair, fur, motion blur. It is found on a map of
those pixels summed over cells of ``side / 32`` pixels (a box search on a small map, cheap on a
24 MP frame). A binary truth has no partial pixel; its window is then the one holding the most
of the truth's edge, and a truth without an edge (all subject or all background) gets the centre.

A :class:`CloseupMaker` is made per photo while it is scored and keeps only the window's pixels,
so a large set never holds more than one full frame; what is kept is small PNGs (lossless: JPEG
would blur the very strands the crop is for) and each prediction's SAD over the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mattectl.evaluation import visual
from mattectl.evaluation.metrics import METRICS
from mattectl.imageio.preview import encode_png

SIDE = 256
LOW = 0.05
HIGH = 0.95
CELLS = 32  # the search map has about this many cells across one window


@dataclass(frozen=True)
class Window:
    left: int
    top: int
    width: int
    height: int
    partial: int  # pixels in the window whose truth is strictly between LOW and HIGH
    basis: str  # what chose it: "partial alpha", "edge" (binary truth) or "centre"

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


@dataclass(frozen=True)
class Closeup:
    """PNG bytes of one window: the photo, the truth and each prediction composited over flat
    grey; ``sad`` per prediction over the window, scaled as the report's SAD (/ 1000)."""

    window: Window
    photo: bytes
    truth: bytes
    cutouts: dict[str, bytes] = field(default_factory=dict)
    sad: dict[str, float] = field(default_factory=dict)


def _densest(mask: np.ndarray, height: int, width: int) -> tuple[int, int, int] | None:
    """Top and left of the ``height x width`` window holding most of ``mask`` (to a cell), and
    the count there by cells; None when the mask is empty."""
    h, w = mask.shape
    cell = max(1, min(height, width) // CELLS)
    rows, cols = h // cell, w // cell
    trimmed = mask[:rows * cell, :cols * cell]
    cells = trimmed.reshape(rows, cell, cols, cell).sum(axis=(1, 3), dtype=np.int64)
    if not cells.any():
        return None
    kh, kw = height // cell, width // cell
    total = np.zeros((rows + 1, cols + 1), np.int64)
    total[1:, 1:] = cells.cumsum(0).cumsum(1)
    sums = total[kh:, kw:] - total[:-kh, kw:] - total[kh:, :-kw] + total[:-kh, :-kw]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    top = min(int(y) * cell, h - height)
    left = min(int(x) * cell, w - width)
    return top, left, int(sums[y, x])


def _edge(truth: np.ndarray) -> np.ndarray:
    """Pixels of a binary truth whose right or lower neighbour is on the other side of 0.5."""
    inside = truth > 0.5
    edge = np.zeros(truth.shape, bool)
    edge[:, :-1] |= inside[:, :-1] != inside[:, 1:]
    edge[:-1, :] |= inside[:-1, :] != inside[1:, :]
    return edge


def find_window(truth: np.ndarray, side: int = SIDE) -> Window:
    """The ``side x side`` window (the whole extent along a shorter side) where ``truth`` (``HxW``
    in [0, 1]) is most uncertain; see the module's docstring."""
    h, w = truth.shape
    height, width = min(side, h), min(side, w)
    partial = (truth > LOW) & (truth < HIGH)
    basis = "partial alpha"
    found = _densest(partial, height, width)
    if found is None:
        basis = "edge"
        found = _densest(_edge(truth), height, width)
    if found is None:
        basis = "centre"
        found = (h - height) // 2, (w - width) // 2, 0
    top, left, _ = found
    window = Window(left, top, width, height, 0, basis)
    count = int(np.count_nonzero(partial[window.slices]))
    return Window(left, top, width, height, count, basis)


class CloseupMaker:
    """One photo's window: the photo and truth cut once, then one picture per prediction."""

    def __init__(self, rgb: np.ndarray, truth: np.ndarray, side: int = SIDE) -> None:
        self.window = find_window(truth, side)
        rows, cols = self.window.slices
        self.photo = np.array(rgb[rows, cols])  # copies: the full frame can go
        self.truth = np.array(truth[rows, cols], dtype=np.float32)
        self.cutouts: dict[str, bytes] = {}
        self.sad: dict[str, float] = {}

    def add(self, name: str, alpha: np.ndarray) -> None:
        rows, cols = self.window.slices
        crop = np.asarray(alpha[rows, cols], dtype=np.float32)
        self.cutouts[name] = encode_png(visual.over_grey(self.photo, crop))
        error = float(np.abs(crop - self.truth).sum(dtype=np.float64))
        self.sad[name] = error * METRICS["sad"].scale

    def done(self) -> Closeup:
        truth = encode_png(visual.over_grey(self.photo, self.truth))
        return Closeup(self.window, encode_png(self.photo), truth, self.cutouts, self.sad)
