"""Crop to the subject: the box to matte (cutting it out and pasting its alpha back is the
matting path's work, ``mattectl.matting.planner``).

U²-Net sees every input squashed to 320x320, so a person filling a twentieth of
the frame gets a few dozen pixels of the network's input; matting a crop around them gives the
network the whole input for the person.
"""

from __future__ import annotations

import math

from mattectl.rules.facts import Box

# A crop that keeps more than this share of the frame gains too little resolution to pay for an
# extra model pass.
MAX_CROP_SHARE = 0.7


def crop_box(subject: Box, width: int, height: int, margin: float) -> Box | None:
    """The subject box grown by ``margin`` times its size on each side, clipped to the frame;
    None when cropping would not help (the crop keeps most of the frame, or is empty)."""
    dx = round(subject.width * margin)
    dy = round(subject.height * margin)
    box = Box(max(0, subject.x0 - dx), max(0, subject.y0 - dy),
              min(width, subject.x1 + dx), min(height, subject.y1 + dy))
    if box.width <= 0 or box.height <= 0 or box.area > MAX_CROP_SHARE * width * height:
        return None
    return box


Side = str  # "left", "top", "right" or "bottom"
SIDES: tuple[Side, ...] = ("left", "top", "right", "bottom")


def open_sides(box: Box, width: int, height: int) -> tuple[Side, ...]:
    """The sides of ``box`` that lie inside the frame (a side on the frame's edge cannot cut
    the subject: the photo ends there)."""
    inside = {"left": box.x0 > 0, "top": box.y0 > 0, "right": box.x1 < width,
              "bottom": box.y1 < height}
    return tuple(side for side in SIDES if inside[side])


def grow(box: Box, sides: tuple[Side, ...], width: int, height: int, by: float) -> Box:
    """``box`` pushed out on ``sides`` by ``by`` times its size across them, clipped to the
    frame."""
    dx, dy = round(box.width * by), round(box.height * by)
    return Box(max(0, box.x0 - dx) if "left" in sides else box.x0,
               max(0, box.y0 - dy) if "top" in sides else box.y0,
               min(width, box.x1 + dx) if "right" in sides else box.x1,
               min(height, box.y1 + dy) if "bottom" in sides else box.y1)


def squared(box: Box, width: int, height: int, max_aspect: float = 1.0) -> Box:
    """``box`` widened on its shorter side (centred, shifted to stay in the frame, clipped where
    the frame is narrower) until its sides are within ``max_aspect`` of each other (1: a
    square). U²-Net squashes every input to a square, so a crop near square is enlarged about
    alike in both directions instead of being stretched."""
    short = math.ceil(max(box.width, box.height) / max_aspect)

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        size = min(max(hi - lo, short), limit)
        start = min(max(0, (lo + hi - size) // 2), limit - size)
        return start, start + size

    x0, x1 = span(box.x0, box.x1, width)
    y0, y1 = span(box.y0, box.y1, height)
    return Box(x0, y0, x1, y1)
