"""Pixel work on alpha mattes that the matting path needs to judge an alpha: a quick shrink,
and the parts of a mask that reach into a rectangle."""

from __future__ import annotations

import cv2
import numpy as np


def shrunk(values: np.ndarray, side: int) -> np.ndarray:
    """``HxW`` float values shrunk (area average) to at most ``side`` pixels on the longer
    side, aspect kept; returned as they are when already that small."""
    height, width = values.shape[:2]
    scale = side / max(height, width)
    values = values.astype(np.float32, copy=False)
    if scale >= 1:
        return values
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(values, size, interpolation=cv2.INTER_AREA)


def resized(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """``HxW`` float values resized (area average) to ``width x height``."""
    return cv2.resize(values.astype(np.float32, copy=False), (width, height),
                      interpolation=cv2.INTER_AREA)


def parts_reaching(mask: np.ndarray, rect: tuple[int, int, int, int], fringe: int) -> np.ndarray:
    """Bool mask of the 8-connected parts of ``mask`` (bool ``HxW``) that reach into ``rect``
    ``(x0, y0, x1, y1)`` or touch it, widened by ``fringe`` pixels."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    x0, y0, x1, y1 = rect
    ring = labels[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1]
    out = np.isin(labels, np.unique(ring[ring > 0])).astype(np.uint8)
    if fringe:
        out = cv2.dilate(out, np.ones((2 * fringe + 1, 2 * fringe + 1), np.uint8))
    return out.astype(bool)


def parts(mask: np.ndarray, min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """The 8-connected parts of ``mask`` (bool ``HxW``): their labels (int32 ``HxW``, 0 outside
    every part) and each label's area, with 0 for the outside and for the specks (parts under
    ``min_share`` of the largest part's area), which then count as no part."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    areas = np.bincount(labels.ravel(), minlength=count)
    areas[0] = 0
    areas[areas < min_share * areas.max()] = 0
    return labels, areas
