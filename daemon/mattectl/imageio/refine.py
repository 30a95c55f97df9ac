"""Alpha matting of the uncertain band at full resolution, and no holes inside the subject.

A model decides at its own resolution (U²-Net at 320x320: a 24 MP frame's hair at 1/15 of its
scale). :func:`refine_matting` takes any model's alpha, makes a trimap from it (:func:`trimap`:
sure subject, sure background, and an unknown band whose width follows the subject's size), and
solves the unknown band with closed-form matting (Levin et al. 2008, pymatting's matting
Laplacian) against the photo. The band is solved a tile at a time, at a resolution chosen by the
photo's size (:func:`work_scale`), so the cost grows with the band, not the frame. Each tile's
unknown pixels are also held, very weakly, to the model's alpha (``prior``): it makes the
system definite where the band reaches no known pixel, which then keeps the model's alpha; a
tile almost without known pixels (a foggy photo) is not solved at all. Stronger priors
measured worse (the solver's answer pulled back towards the model's blur), as did stopping the
conjugate gradients early.

:func:`fill_holes` makes opaque the pixels the subject encloses whose alpha the model left
partial (pale skin, white shirts), unless their colour matches the background around the
subject (a gap between an arm and the body shows the background).

Measured on ../shared/data/hairgt (9 photos with hair-level truth; `mattectl eval --finish
grid`, scripts/measure_refine.py), U²-NetP with lanczos resampling, means over the photos:
the model's alpha SAD 47.8, Grad 20.8; clean edges 47.3, 19.9; the guided filter (:data:`Solver`
GUIDED) 45.1, 16.0; closed-form matting 38.5, 13.4 (rembg's ``-a`` recipe, closed-form on the
whole frame with a fixed 10-pixel trimap, 41.7, 15.7 at about 6 times the cost).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from mattectl.imageio.edges import unit

logger = logging.getLogger(__name__)

FG, BG, UNKNOWN = 255, 0, 128
SURE = 0.95  # alpha above: the subject for sure (before eroding); below 1 - SURE: background
BAND_SHARE = 0.02  # the unknown band's half-width, as a share of the subject's size
MIN_BAND, MAX_BAND = 3, 40  # its bounds, in pixels at the working resolution
WORK_PIXELS = 1.2e6  # the band is solved at a resolution that brings the photo under this
TILE = 1024  # side of a tile's core, at the working resolution
BLEND = 64  # tiles overlap by at least this many pixels, their solutions blended across it
PRIOR = 1e-8  # weight of the model's alpha on an unknown pixel (more: measured worse)
EPSILON = 1e-7  # regularisation of the matting Laplacian (Levin et al.'s epsilon)
MAX_ITERATIONS = 500  # on the hair set they converge in under 250
RTOL = 1e-6  # conjugate gradients stop at this residual, relative
MIN_KNOWN = 0.05  # a tile with a smaller share of known pixels is not solved
# At most this many unknown pixels are solved per photo (a wider band is solved at a lower
# resolution): the cost is about linear in them. The hair set's widest band had 246,000.
MAX_UNKNOWN = 300_000


class Solver(StrEnum):
    CF = "cf"  # closed-form matting on the trimap, model's alpha as a weak prior
    GUIDED = "guided"  # a colour guided filter of the model's alpha (He et al. 2013), no solve


@dataclass(frozen=True)
class Refined:
    """The refined alpha (HxW float32 in [0, 1]) and the mask (HxW uint8, 255) of the pixels
    it may have changed: where the subject's colour wants estimating."""

    alpha: np.ndarray
    band: np.ndarray


def band_radius(alpha: np.ndarray, share: float = BAND_SHARE) -> int:
    """Half-width in pixels of the unknown band for ``alpha``: ``share`` of the subject's size
    (the side of a square of its area), within :data:`MIN_BAND`..:data:`MAX_BAND`."""
    return _radius(cv2.countNonZero(cv2.compare(alpha, 0.5, cv2.CMP_GE)), share)


def _radius(area: int, share: float = BAND_SHARE) -> int:
    """:func:`band_radius` for a subject of ``area`` pixels."""
    return int(np.clip(round(share * area ** 0.5), MIN_BAND, MAX_BAND))


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def trimap(alpha: np.ndarray, radius: int, sure: float = SURE) -> np.ndarray:
    """HxW uint8: :data:`FG` where ``alpha`` is sure subject (above :data:`SURE`) ``radius``
    pixels deep, :data:`BG` where it is sure background as deep, :data:`UNKNOWN` between."""
    alpha = np.ascontiguousarray(alpha, np.float32)
    out = np.full(alpha.shape, UNKNOWN, np.uint8)
    kernel = _disc(radius)
    out[cv2.erode(cv2.compare(alpha, sure, cv2.CMP_GT), kernel) > 0] = FG
    # pixels beyond the frame count as background, so the band reaches the frame's edge
    background = cv2.erode(cv2.compare(alpha, 1 - sure, cv2.CMP_LT), kernel,
                           borderType=cv2.BORDER_CONSTANT, borderValue=255)
    out[background > 0] = BG
    return out


def work_scale(height: int, width: int, work_pixels: float = WORK_PIXELS) -> float:
    """The scale the band is solved at: 1 up to ``work_pixels``, then whatever brings the
    photo down to them (a 24 MP frame's band at 1/2 of its side)."""
    return min(1.0, (work_pixels / max(1, height * width)) ** 0.5)


def tiles(unknown: np.ndarray, tile: int, pad: int
          ) -> Iterator[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(core, padded) slices of the tiles of side ``tile`` that hold unknown pixels; the
    cores cover the image once, each padded by ``pad`` pixels of context (within the image)."""
    height, width = unknown.shape
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            core = (slice(top, min(top + tile, height)), slice(left, min(left + tile, width)))
            if not unknown[core].any():
                continue
            padded = (slice(max(0, top - pad), min(height, top + tile + pad)),
                      slice(max(0, left - pad), min(width, left + tile + pad)))
            yield core, padded


def _ramp(padded: slice, core: slice, pad: int) -> np.ndarray:
    """A tile's blending weight along one axis of its padded extent: 1 over its core, falling
    linearly to about 0 across the ``pad`` pixels of context on either side."""
    index = np.arange(padded.start, padded.stop, dtype=np.float32)
    before = (index - (core.start - pad - 1)) / (pad + 1)
    after = ((core.stop + pad) - index) / (pad + 1)
    return np.clip(np.minimum(before, after), 0, 1)


def solve_cf(image: np.ndarray, tri: np.ndarray, prior: np.ndarray,
             prior_weight: float = PRIOR, epsilon: float = EPSILON, rtol: float = RTOL,
             maxiter: int = MAX_ITERATIONS) -> np.ndarray:
    """Closed-form matting of one tile: ``image`` HxWx3 float64 in [0, 1], ``tri`` its trimap,
    ``prior`` the model's alpha (float). Minimises ``a' L a + w |a - prior|^2`` over the unknown
    pixels, the known ones held at 0 or 1 (the system of the unknown pixels alone, as pymatting's
    estimate_alpha_cf, with ``w = prior_weight``). Returns HxW float32 in [0, 1]."""
    import scipy.sparse
    from pymatting import cf_laplacian, cg  # numba: imported when first needed

    known = (tri != UNKNOWN).ravel()
    unknown = ~known
    out = (tri == FG).astype(np.float64).ravel()
    if unknown.any():
        laplacian = cf_laplacian(image, epsilon=epsilon, is_known=known.reshape(tri.shape))
        rows = laplacian[unknown]
        system = (rows[:, unknown] + prior_weight * scipy.sparse.eye(int(unknown.sum()))).tocsr()
        start = prior.ravel()[unknown].astype(np.float64)
        rhs = prior_weight * start - rows[:, known] @ out[known]
        out[unknown] = cg(system, rhs, x0=start, rtol=rtol, maxiter=maxiter,
                          M=_ichol(system))
    return np.clip(out, 0, 1).reshape(tri.shape).astype(np.float32)


_SHIFTS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 0.5, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
# Room for the factor, per non-zero of the system: the factor of a matting tile's system has
# 3.7 to 4.3 times as many (measured on the hair set at 1080p and 24 MP). pymatting's own
# 2 + 1 per row ran out twice per solve, and each try that runs out is a whole factorisation
# thrown away: 3 of the 4.7 s of a 1080p photo's matting.
FACTOR_FILL = 5


def _ichol(system: object) -> object:
    """pymatting's thresholded incomplete Cholesky preconditioner, as its ``ichol`` does it
    (growing diagonal shifts until the factorisation holds), without its prints to stdout on
    every failed shift and with room for the factor sized to this system (``ichol`` reserves
    4 GB of address space for every call; see :data:`FACTOR_FILL`)."""
    import importlib

    import scipy.sparse

    module = importlib.import_module("pymatting.preconditioner.ichol")  # the package hides it
    matrix = scipy.sparse.csc_matrix(system)
    matrix.sum_duplicates()
    n = matrix.shape[0]
    indices, indptr = matrix.indices.astype(np.int64), matrix.indptr.astype(np.int64)
    room = FACTOR_FILL * matrix.nnz + n
    values, rows = np.empty(room, np.float64), np.empty(room, np.int64)
    starts = np.zeros(n + 1, np.int64)
    for shift in _SHIFTS:  # a failed shift's arrays are written over by the next
        while True:
            nnz = module._ichol(n, matrix.data, indices, indptr, values, rows, starts, 1e-4,
                                shift, room, 0.0, True)
            if nnz != -2:  # -2: out of room
                break
            room *= 2
            del values, rows  # freed before the larger ones are taken
            values, rows = np.empty(room, np.float64), np.empty(room, np.int64)
        if nnz >= 0:
            return module.CholeskyDecomposition((values[:nnz], rows[:nnz], starts))
    raise ValueError("incomplete Cholesky failed at every diagonal shift")


def guided(image: np.ndarray, alpha: np.ndarray, radius: int, eps: float = 1e-4) -> np.ndarray:
    """He et al.'s colour guided filter of ``alpha`` (HxW float32) by ``image`` (HxWx3 float32
    in [0, 1]) over windows of ``radius``; HxW float32 in [0, 1]."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(image)
    mean_p = box(alpha)
    cov_ip = box(image * alpha[..., None]) - mean_i * mean_p[..., None]
    var = np.empty((*alpha.shape, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            v = box(image[..., i] * image[..., j]) - mean_i[..., i] * mean_i[..., j]
            var[..., i, j] = var[..., j, i] = v
    var += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(var, cov_ip[..., None])[..., 0]
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    out = np.einsum("hwc,hwc->hw", box(a), image) + box(b)
    return np.clip(out, 0, 1).astype(np.float32)


def refine_matting(image: np.ndarray, alpha: np.ndarray, *, solver: Solver = Solver.CF,
                   share: float = BAND_SHARE, work_pixels: float = WORK_PIXELS,
                   tile: int = TILE, prior: float = PRIOR, epsilon: float = EPSILON,
                   sure: float = SURE, rtol: float = RTOL,
                   maxiter: int = MAX_ITERATIONS) -> Refined:
    """Refine ``alpha`` (HxW float, any model's, at the photo's size) against ``image`` (HxWx3
    uint8/uint16/float32 in [0, 1]) in its uncertain band; see the module's docstring.

    Outside the band the alpha is snapped to 0 or 1 (the trimap's sure pixels)."""
    alpha = np.ascontiguousarray(alpha, np.float32)
    height, width = alpha.shape
    scale = work_scale(height, width, work_pixels)
    for _ in range(3):  # a band too wide for MAX_UNKNOWN: a lower resolution
        img_s, alpha_s = _reduced(image, alpha, scale)
        radius = band_radius(alpha_s, share)
        tri = trimap(alpha_s, radius, sure)
        unknown = tri == UNKNOWN
        count = np.count_nonzero(unknown)
        if count <= MAX_UNKNOWN:
            break
        scale *= 0.9 * (MAX_UNKNOWN / count) ** 0.5
    if not unknown.any():
        return Refined((tri == FG).astype(np.float32) if scale == 1 else
                       _snap(alpha), np.zeros(alpha.shape, np.uint8))
    out_s = np.where(tri == FG, np.float32(1), np.float32(0))
    if solver is Solver.GUIDED:
        filtered = guided(np.ascontiguousarray(img_s, np.float32), alpha_s, radius)
        out_s[unknown] = filtered[unknown]
    else:
        image64 = img_s.astype(np.float64)
        # Tiles overlap by ``pad`` and their solutions are blended across the overlap: each
        # tile's solution depends on where its context was cut, so cores laid edge to edge
        # showed a straight seam along the tile boundary in fur (issue 18's eval crops).
        pad = max(2 * radius + 8, BLEND)
        total = np.zeros(out_s.shape, np.float32)
        weights = np.zeros(out_s.shape, np.float32)
        for core, padded in tiles(unknown, tile, pad):
            if np.count_nonzero(~unknown[padded]) < MIN_KNOWN * unknown[padded].size:
                solved = alpha_s[padded]  # nothing to solve from: the model's alpha stays
            else:
                solved = solve_cf(image64[padded], tri[padded], alpha_s[padded], prior,
                                  epsilon, rtol, maxiter)
            weight = np.outer(_ramp(padded[0], core[0], pad), _ramp(padded[1], core[1], pad))
            total[padded] += weight * solved
            weights[padded] += weight
        out_s[unknown] = total[unknown] / weights[unknown]
    band_s = unknown.astype(np.uint8) * 255
    if scale == 1:
        return Refined(out_s, band_s)
    band = cv2.resize(cv2.dilate(band_s, np.ones((3, 3), np.uint8)), (width, height),
                      interpolation=cv2.INTER_NEAREST)
    out = _snap(alpha)
    big = cv2.resize(out_s, (width, height), interpolation=cv2.INTER_LINEAR)
    np.copyto(out, big, where=band > 0)
    return Refined(out, band)


def foreground_tiles(image: np.ndarray, alpha: np.ndarray, band: np.ndarray, *,
                     tile: int = TILE, pad: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The subject's colour where ``band`` (HxW uint8) is set: pymatting's multi-level
    foreground estimation (Germer et al. 2020) on each tile of the band with ``pad`` pixels of
    context, at full resolution. Yields (the tile's band pixels as a mask of the whole image's
    flat indices, their Nx3 float32 colours in [0, 1])."""
    from pymatting import estimate_foreground_ml

    rgb = unit(image)
    width = alpha.shape[1]
    for core, padded in tiles(band > 0, tile, pad):
        crop = estimate_foreground_ml(rgb[padded].astype(np.float64),
                                      alpha[padded].astype(np.float64))
        rows, cols = np.nonzero(band[core])
        inner = crop[rows + core[0].start - padded[0].start, cols + core[1].start - padded[1].start]
        flat = (rows + core[0].start).astype(np.intp) * width + cols + core[1].start
        yield flat, np.clip(inner, 0, 1).astype(np.float32)


def _reduced(image: np.ndarray, alpha: np.ndarray, scale: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """The photo (float32 in [0, 1]) and the alpha at ``scale`` (area averaging)."""
    if scale >= 1:
        return unit(image), alpha
    height, width = alpha.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (cv2.resize(unit(image), size, interpolation=cv2.INTER_AREA),
            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))


def _snap(alpha: np.ndarray) -> np.ndarray:
    """Sure pixels at exactly 0 or 1, the rest as they are."""
    out = alpha.copy()
    out[alpha > SURE] = 1
    out[alpha < 1 - SURE] = 0
    return out


# -- holes ---------------------------------------------------------------------------------------

HOLE_ALPHA = 0.9  # a pixel below this, enclosed by pixels above it, is in a hole
HOLE_SHARE = 0.25  # a hole is at most this share of the subject's (opaque) area
BACKGROUND_DISTANCE = 0.1  # RGB distance (0..sqrt 3) to the background colour under which a
# hole's pixel shows the background and is kept


def enclosed(alpha: np.ndarray, level: float = HOLE_ALPHA,
             largest: float = HOLE_SHARE) -> np.ndarray:
    """HxW bool: pixels below ``level`` that no path of such pixels joins to the background at
    the frame's edge (pixels there under 1 - :data:`SURE`): regions ringed by the subject, or by
    the subject and the frame where the subject runs out of it; each at most ``largest`` of the
    subject's area (a larger region is no hole, e.g. where the frame shows no background)."""
    found = _enclosed(alpha, level, largest)
    out = np.zeros(alpha.shape, bool)
    if found is not None:
        box, holes = found
        out[box] = holes
    return out


Box = tuple[slice, slice]


def _enclosed(alpha: np.ndarray, level: float = HOLE_ALPHA, largest: float = HOLE_SHARE
              ) -> tuple[Box, np.ndarray] | None:
    """:func:`enclosed` as the box around every hole and the holes within it; None when there
    is none. (Most photos have a few small holes or none: the per-pixel work stays in the box.)"""
    alpha = np.ascontiguousarray(alpha, np.float32)
    below = cv2.compare(alpha, level, cv2.CMP_LT)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(below, connectivity=4)
    if count <= 1:
        return None
    rim = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    rim_alpha = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    edge = np.unique(rim[rim_alpha < 1 - SURE])
    inside = stats[:, cv2.CC_STAT_AREA] <= largest * (alpha.size - np.count_nonzero(below))
    inside[edge] = False
    inside[0] = False  # the label of pixels at or above the level
    chosen = stats[inside]
    if not len(chosen):
        return None
    left, top = chosen[:, cv2.CC_STAT_LEFT], chosen[:, cv2.CC_STAT_TOP]
    box = (slice(int(top.min()), int((top + chosen[:, cv2.CC_STAT_HEIGHT]).max())),
           slice(int(left.min()), int((left + chosen[:, cv2.CC_STAT_WIDTH]).max())))
    return box, inside[labels[box]]


def fill_holes(image: np.ndarray, alpha: np.ndarray, *,
               distance: float = BACKGROUND_DISTANCE) -> np.ndarray:
    """``alpha`` with the subject's enclosed partial pixels (:func:`enclosed`) made opaque,
    except those whose colour in ``image`` is within ``distance`` of the background's colour
    near the subject (the mean of the sure background in a ring around it). HxW float32."""
    alpha = np.ascontiguousarray(alpha, np.float32)
    found = _enclosed(alpha)
    if found is None:
        return alpha
    reference = _background_colour(image, alpha)
    if reference is None:  # no background to tell holes from: leave them
        return alpha
    box, holes = found
    out = alpha.copy()
    far = np.linalg.norm(unit(image[box][holes]) - reference, axis=1) > distance
    region = out[box]
    values = region[holes]
    values[far] = 1
    region[holes] = values
    return out


def _background_colour(image: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """The mean colour (float32 in [0, 1]) of the sure background within a band around the
    subject in ``image`` (HxWx3, uint8/uint16/float32); None when there is none."""
    subject = cv2.compare(alpha, 0.5, cv2.CMP_GE)
    area = cv2.countNonZero(subject)
    if not area:
        return None
    radius = max(3, _radius(area) * 3)
    # Only pixels within ``radius`` of the subject can be in the ring: the distances are taken
    # in the subject's box widened by that much (the same distances as over the whole frame: a
    # shortest path between two pixels of a rectangle stays in it).
    x, y, w, h = cv2.boundingRect(subject)
    height, width = alpha.shape
    box = (slice(max(0, y - radius - 1), min(height, y + h + radius + 1)),
           slice(max(0, x - radius - 1), min(width, x + w + radius + 1)))
    outside = cv2.bitwise_not(subject[box])
    # distance to the subject: one linear pass, where a dilation by a wide disc took 0.3 s/MP
    near = cv2.distanceTransform(outside, cv2.DIST_L2, 3) <= radius
    ring = (near & (alpha[box] < 1 - SURE)).view(np.uint8)
    if not cv2.countNonZero(ring):
        return None
    mean = np.array(cv2.mean(np.ascontiguousarray(image[box]), mask=ring)[:3], np.float32)
    return mean if image.dtype == np.float32 else mean / np.float32(np.iinfo(image.dtype).max)


def interior_holes(pred: np.ndarray, truth: np.ndarray, *, min_area: int = 16) -> int:
    """How many holes ``pred`` leaves inside the subject: connected regions (of at least
    ``min_area`` pixels) where ``truth`` is opaque, 3 pixels from its edge, but ``pred`` is
    under 0.5."""
    solid = cv2.erode(cv2.compare(np.ascontiguousarray(truth, np.float32), 0.99, cv2.CMP_GE),
                      _disc(3))
    missing = solid & cv2.compare(np.ascontiguousarray(pred, np.float32), 0.5, cv2.CMP_LT)
    _, _, stats, _ = cv2.connectedComponentsWithStats(missing, connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= min_area).sum())
