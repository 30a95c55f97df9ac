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

Per-pixel work happens only in a :class:`Band` (a tenth of a portrait's pixels), on one
contiguous array per colour channel with the arithmetic done in place: the interleaved ``Nx3``
form with einsum and temporaries took about twice as long (scripts/measure_edges.py times both
steps). The band is worked a strip of rows at a time (:meth:`Band.strips`; the results are
the same): its temporaries take about 80 bytes per band pixel, and the band can be the whole
frame (a flat or foggy photo, its alpha uncertain everywhere). Worked whole, such a photo took
94 bytes per pixel at the peak of its cutout, against 27 for a portrait (24 MP, PNG output);
in strips, 27 as well.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

_EPS = np.float32(1e-5)
# Squared RGB distance (0..3) at which the colour-solved alpha gets half the weight.
_SEPARATION = np.float32(0.01)
# How far (relative to that distance) a pixel may lie from the line between the two local
# colours before the solution is no longer trusted (measured: scripts/measure_edges.py).
_RESIDUAL = 0.1
_WORK_PIXELS = 0.25e6
_FAINT = 0.01  # alpha this close to 0 or 1 keeps the photo's colour
_REMAP_COLUMNS = 4096
_COARSE = 4  # blur fusion's wide pass runs at 1/4 of the working resolution
STRIP_PIXELS = 1 << 20  # the band's per-pixel work, a strip of about this many pixels at a time


class Band:
    """Some pixels of an HxW image, in row-major order: their rows, columns and flat indices."""

    def __init__(self, mask: np.ndarray, *, top: int = 0,
                 shape: tuple[int, int] | None = None) -> None:
        """The pixels where ``mask`` (HxW, bool or uint8) is non-zero; ``mask`` may be the rows
        of an image of ``shape`` from ``top`` on (see :meth:`strips`)."""
        points = cv2.findNonZero(mask.view(np.uint8) if mask.dtype == np.bool_ else mask)
        points = np.empty((0, 2), np.int32) if points is None else points.reshape(-1, 2)
        self.shape: tuple[int, int] = shape or mask.shape[:2]
        self.cols = points[:, 0]
        self.rows = points[:, 1] + np.int32(top) if top else points[:, 1]
        self.flat = self.rows.astype(np.intp) * self.shape[1] + self.cols
        self._coords: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def mask_between(alpha: np.ndarray, low: float, high: float) -> np.ndarray:
        """HxW uint8, 255 where the float32 ``alpha`` is strictly between ``low`` and
        ``high`` (one pass of OpenCV's inRange, whose bounds are inclusive)."""
        above = np.nextafter(np.float32(low), np.float32(np.inf))
        below = np.nextafter(np.float32(high), np.float32(-np.inf))
        return cv2.inRange(alpha, float(above), float(below))

    @classmethod
    def between(cls, alpha: np.ndarray, low: float, high: float) -> Band:
        """The pixels whose alpha is strictly between ``low`` and ``high``."""
        return cls(cls.mask_between(alpha, low, high))

    @classmethod
    def strips(cls, mask: np.ndarray, pixels: int | None = None) -> Iterator[Band]:
        """The pixels where ``mask`` is non-zero, as the bands of strips of whole rows of about
        ``pixels`` pixels (default :data:`STRIP_PIXELS`; empty strips left out): together, in
        order, the band of ``mask``."""
        height, width = mask.shape[:2]
        rows = max(1, (pixels or STRIP_PIXELS) // max(1, width))
        for top in range(0, height, rows):
            strip = mask[top:top + rows]
            if cv2.countNonZero(strip.view(np.uint8) if strip.dtype == np.bool_ else strip):
                yield cls(strip, top=top, shape=(height, width))

    def __len__(self) -> int:
        return len(self.flat)

    def coords(self, factor: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) maps for cv2.remap into an image reduced ``factor`` times (see
        :func:`_reduced`): the band's pixel centres there, in rows of ``columns`` (remap wants
        both sides under 32767), padded with zeros. Kept for the next map sampled alike."""
        if (factor, columns) not in self._coords:
            count = len(self)
            padded = -(-count // columns) * columns

            def centres(index: np.ndarray) -> np.ndarray:
                out = np.zeros(padded, np.float32)
                out[:count] = index
                out[:count] += 0.5
                out[:count] *= np.float32(1 / factor)
                out[:count] -= 0.5
                return out.reshape(-1, columns)

            self._coords[(factor, columns)] = (centres(self.cols), centres(self.rows))
        return self._coords[(factor, columns)]

    def take(self, image: np.ndarray) -> np.ndarray:
        """The band's values of an HxW or HxWxC image: N or NxC."""
        return np.take(image.reshape(-1, *image.shape[2:]), self.flat, axis=0)

    def put(self, image: np.ndarray, values: np.ndarray) -> None:
        """Write N (or NxC) values into the band's pixels of a contiguous ``image``."""
        flat = image.reshape(-1, *image.shape[2:])
        if not np.may_share_memory(flat, image):
            raise ValueError("Band.put needs a contiguous image")
        flat[self.flat] = values


def _box(img: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.blur(img, (size, size), borderType=cv2.BORDER_REFLECT)


def unit(values: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1]; float32 is taken as it is."""
    if values.dtype == np.float32:
        return values
    return values.astype(np.float32) * np.float32(1 / np.iinfo(values.dtype).max)


def _planes(values: np.ndarray) -> list[np.ndarray]:
    """NxC -> C contiguous float32 arrays of N: the rows of a new array, safe to change in
    place. A transposed copy is 6 times as fast as cv2.split of the Nx1xC view (which works
    row by row)."""
    return list(np.array(unit(values).T, order="C"))


def _sums(values: np.ndarray, weight: np.ndarray, radius: int) -> np.ndarray:
    """HxWx4: the local means of ``values * weight`` (3 channels) and of ``weight``. Kept apart
    so that they can be interpolated before dividing (a mean over no weight is no colour).
    ``values`` is HxWx3 float32; the four products are one OpenCV pass over RGB widened with a
    channel of ones (numpy's strided writes took 2.4 times as long)."""
    stack = cv2.cvtColor(values, cv2.COLOR_RGB2RGBA)  # the fourth channel is 1.0
    stack *= cv2.merge([weight] * 4)
    return _box(stack, radius)  # one 4-channel pass


def _blurred(values: np.ndarray, weight: np.ndarray, radius: int) -> np.ndarray:
    """The ``weight``-weighted local mean of ``values`` (HxWx3) within ``radius``."""
    sums = _sums(values, weight, radius)
    return sums[..., :3] / (sums[..., 3:] + _EPS)


def _reduced(img: np.ndarray, factor: int) -> np.ndarray:
    """``img`` reduced ``factor`` times by area averaging, as float32 in [0, 1]: reduced pixel
    ``j`` is the mean of full-resolution pixels ``j * factor`` to ``(j + 1) * factor - 1`` (the
    last ones padded with the edge pixels). A whole factor keeps OpenCV on its fast path: 3x
    the general one at 24 MP."""
    if factor == 1:
        return unit(img)
    pad_y, pad_x = -img.shape[0] % factor, -img.shape[1] % factor
    if pad_x or pad_y:
        img = cv2.copyMakeBorder(img, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
    size = (img.shape[1] // factor, img.shape[0] // factor)
    return unit(cv2.resize(img, size, interpolation=cv2.INTER_AREA))


def _sample(small: np.ndarray, band: Band, factor: int) -> list[np.ndarray]:
    """Bilinear values of a map :func:`_reduced` ``factor`` times at the band's
    full-resolution pixels: C arrays of N."""
    map_x, map_y = band.coords(factor, _REMAP_COLUMNS)
    out = cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _planes(out.reshape(map_x.size, -1)[:len(band)])


def _means(sums: list[np.ndarray]) -> list[np.ndarray]:
    """The weighted mean colour (3 arrays, changed in place) from sampled :func:`_sums`."""
    *colour, weight = sums
    scale = np.reciprocal(weight + _EPS)
    for channel in colour:
        channel *= scale
    return colour


def edge_band(alpha: np.ndarray) -> Band:
    """The pixels whose alpha is within 0.01..0.99: where colour needs estimating. Beyond, the
    old background's share (or the subject's missing share) is under 1 %, at most 2.5 levels of
    255 on a new background; U²-Net's faint haze over the background (alpha 1..2 of 255) would
    otherwise double the work (measured: 0.56 of the time per 1080p photo;
    scripts/measure_edges.py: colour and halo errors +0.06..0.08 of 255)."""
    return Band.between(alpha, _FAINT, 1 - _FAINT)


def edge_mask(alpha: np.ndarray) -> np.ndarray:
    """HxW uint8, 255 at the :func:`edge_band`'s pixels."""
    return Band.mask_between(np.ascontiguousarray(alpha, np.float32), _FAINT, 1 - _FAINT)


def foreground_at(image: np.ndarray, alpha: np.ndarray, band: Band) -> np.ndarray:
    """Nx3 float32 in [0, 1]: the subject's colour at the band's pixels.

    ``image`` is the HxWx3 photo (uint8, uint16, or float32 in [0, 1]) and ``alpha`` its HxW
    float32 alpha. Blur fusion's two passes use the paper's radii (90, then 6 pixels) at a
    working resolution of about 0.25 MP; the compositing equation is solved at full resolution.
    """
    return _foreground_in(_foreground_maps(image, alpha), image, alpha, band)


def foreground_strips(image: np.ndarray, alpha: np.ndarray
                      ) -> Iterator[tuple[Band, np.ndarray]]:
    """:func:`foreground_at` over the :func:`edge_band`, a strip of rows at a time (see
    :meth:`Band.strips`): each strip's band and its Nx3 colours. Nothing for an alpha without
    uncertain pixels."""
    mask = Band.mask_between(alpha, _FAINT, 1 - _FAINT)
    if not cv2.countNonZero(mask):
        return
    maps = _foreground_maps(image, alpha)
    for band in Band.strips(mask):
        yield band, _foreground_in(maps, image, alpha, band)


def _foreground_maps(image: np.ndarray, alpha: np.ndarray
                     ) -> tuple[int, np.ndarray, np.ndarray]:
    """Blur fusion's first pass at the working resolution: (its factor, the sums of the
    subject's and of the background's colours that the second pass samples)."""
    factor = _work_factor(*alpha.shape)
    image_s, alpha_s = _reduced(image, factor), _reduced(alpha, factor)
    a = alpha_s[:, :, None]
    fg, bg = _wide_means(image_s, alpha_s, 90)
    # the first pass's F = f + a (I - a f - (1 - a) b) = f + a ((I - b) - a (f - b)), in place
    mixed = image_s - bg
    spread = fg - bg
    spread *= a
    mixed -= spread
    mixed *= a
    mixed += fg
    fg = np.clip(mixed, 0, 1, out=mixed)
    return factor, _sums(fg, alpha_s, 6), _sums(bg, 1 - alpha_s, 6)


def _foreground_in(maps: tuple[int, np.ndarray, np.ndarray], image: np.ndarray,
                   alpha: np.ndarray, band: Band) -> np.ndarray:
    """Blur fusion's second pass at the band's pixels: Nx3 float32 in [0, 1]."""
    factor, fg_sums, bg_sums = maps
    fgs = _means(_sample(fg_sums, band, factor))
    bgs = _means(_sample(bg_sums, band, factor))
    a = band.take(alpha)
    b_share = 1 - a
    out = []
    for f, b, i in zip(fgs, bgs, _planes(band.take(image)), strict=True):
        # F = f + a (I - a f - (1 - a) b), the second pass of blur fusion
        b *= b_share
        i -= b
        i -= a * f
        i *= a
        i += f
        out.append(np.clip(i, 0, 1, out=i))
    return np.stack(out, axis=1)


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
    out = np.array(unit(image), copy=True, order="C")
    for band, colour in foreground_strips(image, alpha):
        band.put(out, colour)
    return out


def _work_factor(height: int, width: int) -> int:
    """The whole factor that brings a photo nearest to the working resolution of 0.25 MP."""
    return max(1, round((height * width / _WORK_PIXELS) ** 0.5))


def _solve(pixel: list[np.ndarray], fg: list[np.ndarray], bg: list[np.ndarray],
           known: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha from ``I = a F + (1 - a) B`` per pixel (channels as arrays of N; all but ``alpha``
    are changed in place), blended with ``alpha`` by how far the solution can be trusted."""
    diff, offset = fg, pixel
    for d, o, b in zip(diff, offset, bg, strict=True):
        d -= b  # F - B
        o -= b  # I - B
    distance = diff[0] * diff[0]
    dot = offset[0] * diff[0]
    for d, o in zip(diff[1:], offset[1:], strict=True):
        distance += d * d
        dot += o * d
    solved = np.clip(dot / (distance + _EPS), 0, 1, out=dot)
    residual = np.zeros_like(distance)
    for d, o in zip(diff, offset, strict=True):
        d *= solved
        o -= d  # what is left of I - B once the solved mix is taken out
        residual += o * o
    residual /= np.float32(_RESIDUAL ** 2) * distance + _EPS
    trust = np.exp(-residual, out=residual)
    trust *= distance / (distance + _SEPARATION)
    trust *= known
    solved -= alpha
    solved *= trust
    solved += alpha  # trust * solved + (1 - trust) * alpha
    return solved


def refine_alpha(image: np.ndarray, alpha: np.ndarray, upscale: float) -> np.ndarray:
    """Make an alpha enlarged ``upscale`` times follow the edges of ``image`` (HxWx3: uint8,
    uint16 or float32 in [0, 1], full resolution). Returns an HxW float32 alpha in [0, 1].

    Only the uncertain band changes (alpha strictly between 0.01 and 0.99, widened by the
    enlargement factor). There, the subject's and the background's colours are estimated from
    the confident pixels nearby (alpha above 0.95 and below 0.05, within one model pixel), alpha
    is solved from ``I = a F + (1 - a) B`` at full resolution and blended with the enlarged
    alpha by how far it can be trusted: not where subject and background look alike, nor where
    the pixel is no mix of those two colours (a third colour nearby). There the model's alpha
    stays. Local colours are averaged at about twice the model's resolution (the photo reduced
    by the whole factor ``ceil(upscale / 2)``).
    """
    alpha = np.ascontiguousarray(alpha, np.float32)
    side = 2 * max(1, round(upscale)) + 1
    unsure = Band.mask_between(alpha, 0.01, 0.99)
    mask = cv2.dilate(unsure, np.ones((side, side), np.uint8))
    del unsure
    if not cv2.countNonZero(mask):
        return alpha
    factor = max(1, math.ceil(upscale / 2))
    image_s = _reduced(image, factor)
    # the share of each reduced pixel that is confidently subject, or background
    fg_share = _reduced(cv2.compare(alpha, 0.95, cv2.CMP_GT), factor)
    bg_share = _reduced(cv2.compare(alpha, 0.05, cv2.CMP_LT), factor)
    radius = max(2, round(upscale / factor))
    fg_sums = _sums(image_s, fg_share, radius)
    bg_sums = _sums(image_s, bg_share, radius)
    out = alpha.copy()
    for band in Band.strips(mask):
        fg = _sample(fg_sums, band, factor)
        bg = _sample(bg_sums, band, factor)
        known = (fg[3] > 0.01) & (bg[3] > 0.01)
        band.put(out, _solve(_planes(band.take(image)), _means(fg), _means(bg), known,
                             band.take(alpha)))
    return out
