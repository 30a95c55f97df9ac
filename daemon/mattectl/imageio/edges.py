"""Clean edges, pure numpy/OpenCV: the subject's colour under semi-transparent pixels, and an alpha
upscaled from the model's resolution refined against the full-resolution photo.

Both use box filters only (OpenCV's run in constant time per pixel whatever the radius):

- ``estimate_foreground``: "blur fusion" (Forte and Pitié, *Approximate Fast Foreground Colour
  Estimation*, ICIP 2021), two passes. Solves ``I = a F + (1 - a) B`` for ``F`` locally, with
  ``F`` and ``B`` taken from blurred, alpha-weighted neighbourhoods.
- ``refine_alpha``: in the uncertain band of an enlarged alpha, solves the compositing equation
  with local foreground and background colours, trusted as far as the two differ. (A colour
  guided filter, He et al. 2013, was measured first: it blurred crisp edges as often as it
  sharpened them; see scripts/measure_edges.py.)

scripts/measure_edges.py measures both against known composites.
"""

from __future__ import annotations

import cv2
import numpy as np

_EPS = np.float32(1e-5)
# Squared RGB distance (0..3) at which the colour-solved alpha gets half the weight.
_SEPARATION = 0.01
# How far (relative to that distance) a pixel may lie from the line between the two local
# colours before the solution is no longer trusted (measured: scripts/measure_edges.py).
_RESIDUAL = 0.1
_WORK_PIXELS = 0.25e6
_FAINT = np.float32(0.01)  # alpha this close to 0 or 1 keeps the photo's colour
_REMAP_COLUMNS = 4096
_COARSE = 4  # blur fusion's wide pass runs at 1/4 of the working resolution


def _box(img: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.blur(img, (size, size), borderType=cv2.BORDER_REFLECT)


def unit(values: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1]; float32 is taken as it is."""
    if values.dtype == np.float32:
        return values
    return values.astype(np.float32) * np.float32(1 / np.iinfo(values.dtype).max)


def _sums(values: np.ndarray, weight: np.ndarray, radius: int) -> np.ndarray:
    """HxWx4: the local means of ``values * weight`` (3 channels) and of ``weight``. Kept apart
    so that they can be interpolated before dividing (a mean over no weight is no colour)."""
    stack = np.empty((*weight.shape, 4), np.float32)
    np.multiply(values, weight[:, :, None], out=stack[:, :, :3])
    stack[:, :, 3] = weight
    return _box(stack, radius)  # one 4-channel pass


def _mean(sums: np.ndarray) -> np.ndarray:
    """The weighted mean colour from :func:`_sums` (any leading shape)."""
    return sums[..., :3] / (sums[..., 3:] + _EPS)


def _blurred(values: np.ndarray, weight: np.ndarray, radius: int) -> np.ndarray:
    """The ``weight``-weighted local mean of ``values`` (HxWx3) within ``radius``."""
    return _mean(_sums(values, weight, radius))


def _small(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` reduced to ``size`` (width, height) by area averaging, as float32 in [0, 1]."""
    same = (img.shape[1], img.shape[0]) == size
    return unit(img if same else cv2.resize(img, size, interpolation=cv2.INTER_AREA))


def _sample(small: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            shape: tuple[int, int]) -> np.ndarray:
    """Bilinear values of a reduced HxWxC map at full-resolution pixels: an NxC array."""
    count = len(rows)
    padded = -(-count // _REMAP_COLUMNS) * _REMAP_COLUMNS  # remap wants both sides < 32767

    def coords(index: np.ndarray, ratio: float) -> np.ndarray:
        out = np.zeros(padded, np.float32)
        out[:count] = (index + 0.5) * ratio - 0.5
        return out.reshape(-1, _REMAP_COLUMNS)

    map_x = coords(cols, small.shape[1] / shape[1])
    map_y = coords(rows, small.shape[0] / shape[0])
    out = cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(padded, -1)[:count]


def edge_band(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels whose alpha is within 0.01..0.99: where colour needs
    estimating. Beyond, the old background's share (or the subject's missing share) is under
    1 %, at most 2.5 levels of 255 on a new background; U²-Net's faint haze over the background
    (alpha 1..2 of 255) would otherwise double the work (measured: 0.56 of the time per 1080p
    photo; scripts/measure_edges.py: colour and halo errors +0.06..0.08 of 255)."""
    return np.nonzero((alpha > _FAINT) & (alpha < 1 - _FAINT))


def foreground_at(image: np.ndarray, alpha: np.ndarray, rows: np.ndarray,
                  cols: np.ndarray) -> np.ndarray:
    """Nx3 float32 in [0, 1]: the subject's colour at the pixels (rows, cols).

    ``image`` is the HxWx3 photo (uint8, uint16, or float32 in [0, 1]) and ``alpha`` its HxW
    float32 alpha. Blur fusion's two passes use the paper's radii (90, then 6 pixels) at a
    working resolution of about 1 MP; the compositing equation is solved at full resolution.
    """
    width, height = _work_size(*alpha.shape)
    image_s, alpha_s = _small(image, (width, height)), _small(alpha, (width, height))
    a = alpha_s[:, :, None]
    fg, bg = _wide_means(image_s, alpha_s, 90)
    fg = np.clip(fg + a * (image_s - a * fg - (1 - a) * bg), 0, 1)
    fg = _mean(_sample(_sums(fg, alpha_s, 6), rows, cols, alpha.shape))
    bg = _mean(_sample(_sums(bg, 1 - alpha_s, 6), rows, cols, alpha.shape))
    a = alpha[rows, cols][:, None]
    return np.clip(fg + a * (unit(image[rows, cols]) - a * fg - (1 - a) * bg), 0, 1)


def _wide_means(image: np.ndarray, alpha: np.ndarray, radius: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Blur fusion's first pass: alpha- and (1 - alpha)-weighted local means over ``radius``.

    A box this wide is smooth, so it is computed at a quarter of the resolution (radius / 4)
    and enlarged: about 16 times less work (measured: scripts/measure_edges.py)."""
    size = (max(1, image.shape[1] // _COARSE), max(1, image.shape[0] // _COARSE))
    image_c = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    alpha_c = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    r = max(1, round(radius / _COARSE))
    back = (image.shape[1], image.shape[0])
    fg = cv2.resize(_blurred(image_c, alpha_c, r), back, interpolation=cv2.INTER_LINEAR)
    bg = cv2.resize(_blurred(image_c, 1 - alpha_c, r), back, interpolation=cv2.INTER_LINEAR)
    return fg, bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``HxWx3`` float32 photo in [0, 1] and ``HxW`` float32 alpha -> the foreground colour:
    the photo, except in the :func:`edge_band`, where it is the colour the subject has without
    the old background mixed in (see :func:`foreground_at`)."""
    rows, cols = edge_band(alpha)
    out = unit(image).copy()
    if len(rows):
        out[rows, cols] = foreground_at(image, alpha, rows, cols)
    return out


def _work_size(height: int, width: int) -> tuple[int, int]:
    """(width, height) of the working resolution: at most about 1 MP."""
    scale = min(1.0, (_WORK_PIXELS / (height * width)) ** 0.5)
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine_alpha(image: np.ndarray, alpha: np.ndarray, upscale: float) -> np.ndarray:
    """Make an alpha enlarged ``upscale`` times follow the edges of ``image`` (HxWx3: uint8,
    uint16 or float32 in [0, 1], full resolution). Returns an HxW float32 alpha in [0, 1].

    Only the uncertain band changes (alpha strictly between 0.01 and 0.99, widened by the
    enlargement factor). There, the subject's and the background's colours are estimated from
    the confident pixels nearby (alpha above 0.95 and below 0.05, within one model pixel), alpha
    is solved from ``I = a F + (1 - a) B`` at full resolution and blended with the enlarged
    alpha by how far it can be trusted: not where subject and background look alike, nor where
    the pixel is no mix of those two colours (a third colour nearby). There the model's alpha
    stays. Local colours are averaged at twice the model's resolution.
    """
    shape = alpha.shape
    width = 2 * max(1, round(upscale)) + 1
    unsure = cv2.dilate(((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8),
                        np.ones((width, width), np.uint8))
    rows, cols = np.nonzero(unsure)
    if len(rows) == 0:
        return alpha
    factor = max(1.0, upscale / 2)
    size = (max(1, round(shape[1] / factor)), max(1, round(shape[0] / factor)))
    image_s = _small(image, size)
    fg_mask = _small((alpha > 0.95).astype(np.float32), size)
    bg_mask = _small((alpha < 0.05).astype(np.float32), size)
    radius = max(2, round(upscale / factor))
    fg = _sample(_sums(image_s, fg_mask, radius), rows, cols, shape)
    bg = _sample(_sums(image_s, bg_mask, radius), rows, cols, shape)
    known = (fg[:, 3] > 0.01) & (bg[:, 3] > 0.01)
    fg, bg = _mean(fg), _mean(bg)
    pixel = unit(image[rows, cols])
    diff = fg - bg
    distance = np.einsum("ij,ij->i", diff, diff)
    solved = np.clip(np.einsum("ij,ij->i", pixel - bg, diff) / (distance + _EPS), 0, 1)
    trust = distance / (distance + np.float32(_SEPARATION))
    residual = pixel - solved[:, None] * fg - (1 - solved[:, None]) * bg
    trust *= np.exp(-np.einsum("ij,ij->i", residual, residual)
                    / (np.float32(_RESIDUAL ** 2) * distance + _EPS))
    trust *= known
    out = alpha.copy()
    out[rows, cols] = trust * solved + (1 - trust) * alpha[rows, cols]
    return out
