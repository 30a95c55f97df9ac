"""Combine a photo and its alpha matte (numpy and OpenCV): clean edges, trim, quantise, flatten."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mattectl.imageio.edges import edge_mask, foreground_strips, refine_alpha, unit
from mattectl.imageio.options import EdgeMode
from mattectl.imageio.refine import Solver, fill_holes, foreground_tiles, refine_matting

# Pixels fainter than this (about 8 of 255) do not count as subject when trimming.
TRIM_THRESHOLD = 0.03
# Refine only an alpha enlarged at least this much from the model's resolution.
MIN_UPSCALE = 1.5


@dataclass(frozen=True)
class Layers:
    """A cutout before encoding: straight (not premultiplied) colour and its alpha.

    ``colour`` is HxWx3 uint8 or uint16, in the source's colour space; ``alpha`` is HxW float32
    in [0, 1].
    """

    colour: np.ndarray
    alpha: np.ndarray

    @property
    def width(self) -> int:
        return int(self.alpha.shape[1])

    @property
    def height(self) -> int:
        return int(self.alpha.shape[0])


_CV_DEPTHS = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}


def quantise(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats in [0, 1] -> uint8 or uint16, rounded to nearest and clipped.

    One OpenCV pass (scale with a saturating cast): a fifth of numpy's clip-scale-cast at
    1080p. The values are seen as one channel, so that the scale applies to every one."""
    values = np.asarray(values, np.float32)
    if values.size == 0:
        return np.zeros(values.shape, dtype)
    plane = values.reshape(values.shape[0] if values.ndim else 1, -1)
    scaled = cv2.multiply(plane, float(np.iinfo(dtype).max), dtype=_CV_DEPTHS[np.dtype(dtype)])
    return scaled.reshape(values.shape)


def to_uint8(alpha: np.ndarray) -> np.ndarray:
    """Float alpha in [0, 1] -> uint8, rounded as every output's alpha is."""
    return quantise(alpha, np.dtype(np.uint8))


def layers(pixels: np.ndarray, alpha: np.ndarray, *, source_alpha: np.ndarray | None = None,
           clean_edges: bool = True, model_side: int | None = None,
           guide: np.ndarray | None = None, colour: bool = True,
           edges: EdgeMode = EdgeMode.CLEAN, holes: bool = False) -> Layers:
    """The cutout of ``pixels`` (HxWx3 uint8/uint16) under the model's ``alpha`` (HxW float).

    ``source_alpha`` (transparency the input already had) multiplies the model's alpha. Without
    ``clean_edges`` (or with ``edges`` OFF) that is all. With ``holes``, partial pixels the
    subject encloses are made opaque unless they show the background
    (:func:`~mattectl.imageio.refine.fill_holes`). The alpha is then refined against ``guide``
    (what the model saw; default ``pixels``) as ``edges`` says: alpha matting of the uncertain
    band (MATTING, GUIDED: any model's alpha), or (CLEAN) an alpha enlarged from a model that
    works at ``model_side`` pixels made to follow the photo's edges; and semi-transparent
    pixels get the subject's own colour (unless ``colour`` is False: a matte has none).
    """
    if pixels.shape[:2] != alpha.shape:
        raise ValueError(f"photo {pixels.shape[:2]} and alpha {alpha.shape} differ in size")
    alpha = alpha.astype(np.float32, copy=False)
    guide = pixels if guide is None else guide
    if holes and clean_edges:  # clean_edges off: the model's alpha as it came
        alpha = fill_holes(guide, alpha)
    if not clean_edges or edges is EdgeMode.OFF:
        if source_alpha is not None:
            alpha = alpha * source_alpha
        return Layers(pixels, alpha)
    upscale = max(alpha.shape) / model_side if model_side else 1.0
    band = None
    if edges is not EdgeMode.CLEAN:
        solver = Solver.GUIDED if edges is EdgeMode.GUIDED else Solver.CF
        refined = refine_matting(guide, alpha, solver=solver)
        alpha, band = refined.alpha, refined.band
    elif upscale >= MIN_UPSCALE:
        alpha = refine_alpha(guide, alpha, upscale)
    if source_alpha is not None:
        alpha = alpha * source_alpha
    if not colour:
        return Layers(pixels, alpha)
    fg = np.array(pixels, order="C")  # opaque and fully transparent pixels keep the photo's
    if band is not None:  # the matted band's colour by the same family of solver
        flat_fg = fg.reshape(-1, 3)
        for flat, values in foreground_tiles(pixels, alpha, band & edge_mask(alpha)):
            flat_fg[flat] = quantise(values, pixels.dtype)
        return Layers(fg, alpha)
    for strip, values in foreground_strips(pixels, alpha):
        strip.put(fg, quantise(values, pixels.dtype))
    return Layers(fg, alpha)


def trim_box(alpha: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the subject plus ``margin`` pixels, clamped to the image;
    None when nothing reaches :data:`TRIM_THRESHOLD`."""
    rows = np.flatnonzero((alpha >= TRIM_THRESHOLD).any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero((alpha[rows[0]:rows[-1] + 1] >= TRIM_THRESHOLD).any(axis=0))
    height, width = alpha.shape
    return (max(0, rows[0] - margin), min(height, rows[-1] + 1 + margin),
            max(0, cols[0] - margin), min(width, cols[-1] + 1 + margin))


def trimmed(cut: Layers, margin: int) -> Layers:
    box = trim_box(cut.alpha, margin)
    if box is None:
        return cut
    top, bottom, left, right = box
    return Layers(cut.colour[top:bottom, left:right], cut.alpha[top:bottom, left:right])


def rgba(cut: Layers, dtype: np.dtype) -> np.ndarray:
    """HxWx4 straight RGBA of ``dtype`` (uint8 or uint16). OpenCV widens RGB to RGBA and
    copies the alpha into the fourth channel: numpy's strided copies took 5 times longer at
    1080p, splitting and merging the planes 4 times longer at 24 MP."""
    colour = cut.colour if cut.colour.dtype == dtype else \
        quantise(unit(cut.colour), dtype)
    out = cv2.cvtColor(colour, cv2.COLOR_RGB2RGBA)
    cv2.mixChannels([quantise(cut.alpha, dtype)], [out], [0, 3])
    return out


def flatten(cut: Layers, background: tuple[int, int, int]) -> np.ndarray:
    """HxWx3 uint8: the cutout composited over a solid ``background`` colour."""
    colour = cut.colour if cut.colour.dtype == np.uint8 else \
        quantise(unit(cut.colour), np.dtype(np.uint8))
    behind = np.empty_like(colour)
    behind[:] = background
    # OpenCV's weighted blend: one pass in C++ (5x numpy's at 24 MP, scripts/bench_encode.py).
    return cv2.blendLinear(colour, behind, cut.alpha, 1 - cut.alpha)


def cutout_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 RGB and ``HxW`` float alpha -> ``HxWx4`` uint8 RGBA (straight alpha)."""
    return rgba(layers(rgb, alpha, clean_edges=False), np.dtype(np.uint8))
