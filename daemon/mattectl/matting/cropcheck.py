"""Crop to the subject without cutting the subject.

The crop box comes from the probe, a coarse pass that may have seen only part of the person (a
walking person's legs lost against the street). So the crop is squared (U²-Net squashes every
input to a square: a square crop is enlarged alike both ways) and its own alpha is checked
against the crop's borders: subject touching a border that is not the frame's edge means the
box was too small, so the box grows on those sides and the crop is matted again, up to
``MAX_ROUNDS`` passes and while the crop stays under ``MAX_SHARE`` of the frame (past that,
cropping does not pay). Growing only lets more of the person in: a grown pass that drops a part
of the full-frame subject which an earlier pass kept has let in a larger neighbour (an animal,
a statue) that the model now takes for the subject, so the whole frame is matted instead
(:func:`lost_part`). The crop's alpha is then merged with the full-frame pass (the probe's):
subject the full frame sees outside the box, connected to the subject inside it, is kept rather
than cut off at the box. Last, a merged crop less sure of itself than the full-frame pass
(the share of its subject outside the uncertain band, see :mod:`mattectl.matting.confidence`)
that still cuts the person, claims at least as much subject as the full frame (a salient
object beside the person made crisp), or claims a subject large enough that the full frame saw
it well, gives way to the whole frame (:func:`crop_worse`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mattectl.imageio.regions import parts, parts_reaching
from mattectl.matting.confidence import band_confidence
from mattectl.rules.crop import MAX_CROP_SHARE, Side, grow, open_sides, squared
from mattectl.rules.facts import Box

THRESHOLD = 0.5  # alpha at or above this counts as subject
MIN_TOUCH = 0.01  # subject over this share of a border's length (and 2 px) touches it
GROW = 0.5  # a touched side moves out by this share of the box's size across it
MAX_ROUNDS = 3  # crop passes before giving up on the crop
FRINGE = 3  # px of soft edge kept around merged parts
# A crop over more than this share of the frame (after squaring) gains too little resolution
# to pay for another pass and a pasted alpha: the rules' own bound.
MAX_SHARE = MAX_CROP_SHARE
MAX_ASPECT = 1.0  # crops are widened to at most this ratio of their sides (see squared)
MIN_PART = 0.05  # parts of the full-frame subject under this share of the largest are specks
KEPT = 0.5  # a part that a pass covers this share of is one it kept ...
DROPPED = 0.1  # ... and one it covers less than this share of, one it dropped
# A crop subject over this share of the frame filled some 15 % of U²-Net's 320x320 input on the
# whole frame (a 120 px square): enough to see it, so a softer crop is not a small person seen
# at last. Chosen on the tune half of scripts/measure_crop_safety.py: anywhere in 0.12-0.18
# gives the same result there.
LARGE = 0.15

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CropCheck:
    """How a crop went: the ``box`` finally matted (None: the whole frame was), the crop passes
    run, the sides touched on each, and how many pixels came from the full-frame pass."""

    box: Box | None
    rounds: int
    touched: tuple[tuple[Side, ...], ...]
    merged_px: int = 0
    why: str | None = None  # why the whole frame was matted instead of the crop

    def record(self) -> dict[str, Any]:
        return {"box": self.box.as_list() if self.box else None, "rounds": self.rounds,
                "touched": [list(sides) for sides in self.touched],
                "whole_frame": self.box is None, "merged_px": self.merged_px, "why": self.why}


def cut(rgb: np.ndarray, box: Box) -> np.ndarray:
    """The crop of an ``HxWx3`` image, as a contiguous array (what backends expect)."""
    return np.ascontiguousarray(rgb[box.y0:box.y1, box.x0:box.x1])


def touched_sides(alpha: np.ndarray, box: Box, width: int, height: int) -> tuple[Side, ...]:
    """The sides of the crop (its alpha, ``box.height x box.width``) that the subject touches,
    leaving out sides on the frame's edge."""
    lines = {"left": alpha[:, 0], "top": alpha[0], "right": alpha[:, -1], "bottom": alpha[-1]}
    out = []
    for side in open_sides(box, width, height):
        line = lines[side]
        if np.count_nonzero(line >= THRESHOLD) >= max(2, MIN_TOUCH * line.size):
            out.append(side)
    return tuple(out)


def connected_outside(full: np.ndarray, box: Box) -> np.ndarray:
    """Bool mask of the full-frame subject outside ``box`` that is connected to the subject
    inside it (with a fringe of ``FRINGE`` px for its soft edge)."""
    mask = parts_reaching(full >= THRESHOLD, (box.x0, box.y0, box.x1, box.y1), FRINGE)
    mask[box.y0:box.y1, box.x0:box.x1] = False
    return mask


def lost_part(full: np.ndarray, passes: list[tuple[Box, np.ndarray]]) -> bool:
    """Whether the last of the crop ``passes`` (box, its bool subject mask) dropped a part of the
    full-frame subject ``full`` (``HxW``) that an earlier pass kept. A box grows to let the
    rest of the person in; a grown pass that lets go of what the smaller box held let in a
    larger neighbour (an animal, a statue, a poster) that the model now takes for the subject."""
    if len(passes) < 2:
        return False
    labels, areas = parts(full >= THRESHOLD, MIN_PART)
    found = areas > 0
    if not found.any():
        return False

    def cover(box: Box, subject: np.ndarray) -> np.ndarray:
        inside = labels[box.y0:box.y1, box.x0:box.x1][subject]
        return np.bincount(inside, minlength=areas.size)[found] / areas[found]

    last = cover(*passes[-1])
    return any(bool(np.any((cover(*earlier) >= KEPT) & (last < DROPPED)))
               for earlier in passes[:-1])


def crop_worse(alpha: np.ndarray, full: np.ndarray, cuts: bool) -> bool:
    """Whether the merged crop ``alpha`` did not help over the full-frame pass ``full``: it is
    less sure of itself (see :func:`~mattectl.matting.confidence.band_confidence`) and either
    still ``cuts`` the person, claims at least as much subject, or claims a subject over
    ``LARGE`` of the frame. A crop that claims less subject, softly, is a small person seen at
    last at full resolution (whose full-frame alpha is often a crisp, wrong blob); one that
    claims more, crisply, made a plant or a lamp beside the person as large as the person; and
    a person that large the full frame saw well enough, so a softer crop only lost detail."""
    if band_confidence(alpha) >= band_confidence(full):
        return False
    claimed = np.count_nonzero(alpha >= THRESHOLD)
    return (cuts or claimed >= np.count_nonzero(full >= THRESHOLD)
            or claimed >= LARGE * alpha.size)


def matte_crop(predict: Predict, rgb: np.ndarray, box: Box, full: np.ndarray,
               whole: Callable[[], np.ndarray]) -> tuple[np.ndarray, CropCheck]:
    """The frame's alpha from crops around ``box`` (grown until the subject stays inside),
    merged with ``full`` (the full-frame pass, ``HxW``); ``whole()`` mattes the whole frame
    when the crop does not pay: too large, or worse than the full-frame pass
    (:func:`crop_worse`), or a grown crop lost part of the subject (:func:`lost_part`)."""
    height, width = rgb.shape[:2]
    frame = width * height
    current = squared(box, width, height, MAX_ASPECT)
    if current.area > MAX_SHARE * frame:
        return whole(), CropCheck(None, 0, (), why="crop too large")
    touched: list[tuple[Side, ...]] = []
    passes: list[tuple[Box, np.ndarray]] = []
    while True:
        crop = predict(cut(rgb, current))
        passes.append((current, crop >= THRESHOLD))  # masks: a 24 MP crop's alpha is large
        sides = touched_sides(crop, current, width, height)
        touched.append(sides)
        if not sides or len(touched) >= MAX_ROUNDS:
            break
        grown = squared(grow(current, sides, width, height, GROW), width, height, MAX_ASPECT)
        if grown.area > MAX_SHARE * frame:
            break
        current = grown
    if lost_part(full, passes):
        return whole(), CropCheck(None, len(touched), tuple(touched),
                                  why="the grown crop lost part of the subject")
    alpha = np.zeros((height, width), np.float32)
    alpha[current.y0:current.y1, current.x0:current.x1] = crop
    outside = connected_outside(full, current)
    alpha[outside] = full[outside]
    if crop_worse(alpha, full, bool(sides)):
        return whole(), CropCheck(None, len(touched), tuple(touched),
                                  why="the crop was less sure than the whole frame")
    merged = int(np.count_nonzero(outside & (full >= THRESHOLD)))
    return alpha, CropCheck(current, len(touched), tuple(touched), merged)
