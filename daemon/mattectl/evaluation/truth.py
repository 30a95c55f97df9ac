"""True alpha mattes as datasets ship them, each read the way it was meant.

Public matting sets store their truth in several ways: a grey image (8 or 16 bits, or float);
an RGBA or LA image whose alpha channel is the matte (a cutout); or an RGBA/RGB image whose
alpha channel is opaque (or absent) while the grey (colour) channels hold the matte. Reading the
last kind by its alpha channel would score every prediction against an all-opaque truth, so the
alpha channel is used only when it carries something; the reading taken is returned for the
report. A truth of another size than its photo is refused, never resized (a resize would score
a different matte than the dataset's).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, UnidentifiedImageError

from mattectl.errors import InputError

_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0,
               "I": 65535.0}
OPAQUE = 255  # an alpha channel at this level everywhere carries no matte


class Reading(StrEnum):
    GREY = "grey matte"
    ALPHA = "alpha channel"
    GREY_OPAQUE_ALPHA = "grey channels (alpha channel opaque)"
    GREY_CHANNELS = "grey channels of an RGB image"


@dataclass(frozen=True)
class Truth:
    alpha: np.ndarray  # HxW float32 in [0, 1]
    reading: Reading


def _open(data: bytes, name: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: not a readable matte image ({exc})") from None
    return img


def _grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32) * np.float32(1 / 255)


def read_truth(data: bytes, *, name: str) -> Truth:
    """Truth bytes -> the matte and how it was read (see the module's docstring)."""
    img = _open(data, name)
    if img.mode in _WIDE_MODES:
        alpha = np.asarray(img, dtype=np.float32) / _WIDE_MODES[img.mode]
        return Truth(alpha.clip(0, 1), Reading.GREY)
    if img.mode == "F":
        return Truth(np.asarray(img, dtype=np.float32).clip(0, 1), Reading.GREY)
    if img.mode == "L":
        return Truth(_grey(img), Reading.GREY)
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA") if img.mode != "LA" else img
        band = np.asarray(rgba.getchannel("A"))
        if band.min() < OPAQUE:
            return Truth(band.astype(np.float32) * np.float32(1 / 255), Reading.ALPHA)
        return Truth(_grey(rgba.convert("RGB") if img.mode != "LA" else rgba.getchannel("L")),
                     Reading.GREY_OPAQUE_ALPHA)
    return Truth(_grey(img), Reading.GREY_CHANNELS)


def load_truth(data: bytes, *, name: str, width: int, height: int) -> Truth:
    """:func:`read_truth` of a photo's truth, refused (InputError) unless it is the photo's
    ``width x height``."""
    truth = read_truth(data, name=name)
    th, tw = truth.alpha.shape
    if (tw, th) != (width, height):
        raise InputError(f"{name}: the truth is {tw}x{th} but its photo is {width}x{height}; "
                         "a truth must be the photo's size (it is not resized: make one of "
                         "the photo's size)")
    return truth
