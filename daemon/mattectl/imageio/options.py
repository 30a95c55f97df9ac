"""What a cutout is written as: one small typed object that a folder (and later a rule) supplies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class OutputFormat(StrEnum):
    PNG = "png"  # RGBA, 8 bit, or 16 bit when the source had it
    TIFF = "tiff"  # RGBA with unassociated alpha, 8 or 16 bit like the source
    WEBP = "webp"  # RGBA, lossless, 8 bit
    JPEG = "jpeg"  # flattened onto ``background``, 8 bit
    MATTE = "matte"  # the alpha alone, as a grayscale PNG


class EdgeMode(StrEnum):
    """How the model's alpha is finished at the photo's resolution (imageio/refine.py measured
    them on truth: scripts/measure_refine.py)."""

    MATTING = "matting"  # closed-form alpha matting of the uncertain band
    GUIDED = "guided"  # a colour guided filter of the uncertain band: cheaper, a little worse
    CLEAN = "clean"  # the compositing equation with local colours (imageio/edges.py)
    OFF = "off"  # the model's alpha as it is


#: The file extension each format is written with, and the spellings a template may use.
EXTENSIONS: dict[OutputFormat, tuple[str, ...]] = {
    OutputFormat.PNG: ("png",),
    OutputFormat.TIFF: ("tif", "tiff"),
    OutputFormat.WEBP: ("webp",),
    OutputFormat.JPEG: ("jpg", "jpeg"),
    OutputFormat.MATTE: ("png",),
}
IMAGE_EXTENSIONS = frozenset(ext for spellings in EXTENSIONS.values() for ext in spellings)


def parse_colour(value: str) -> tuple[int, int, int]:
    """``'#rrggbb'`` or ``'#rgb'`` -> an RGB triple; ValueError otherwise."""
    match = re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value.strip())
    if match is None:
        raise ValueError(f"colour {value!r} is not '#rrggbb'")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


@dataclass(frozen=True)
class OutputOptions:
    """How one cutout is rendered and encoded.

    ``background`` is used by JPEG only. ``trim`` crops to the subject's bounding box plus
    ``trim_margin`` pixels (never beyond the photo). ``keep_16bit`` keeps 16 bits per channel in
    PNG and TIFF when the source had them. ``clean_edges`` estimates the subject's colour under
    semi-transparent pixels and refines the alpha against the full-resolution photo as
    ``edges`` says; ``fill_holes`` makes opaque the partial pixels the subject encloses unless
    they show the background's colour. ``clean_edges = False`` writes the model's alpha as it
    came (no edge work, no hole filling).
    """

    format: OutputFormat = OutputFormat.PNG
    background: tuple[int, int, int] = (255, 255, 255)
    jpeg_quality: int = 95
    trim: bool = False
    trim_margin: int = 0
    keep_16bit: bool = True
    clean_edges: bool = True
    edges: EdgeMode = EdgeMode.MATTING
    fill_holes: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality {self.jpeg_quality} is not within 1..100")
        if self.trim_margin < 0:
            raise ValueError(f"trim_margin {self.trim_margin} is negative")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background {self.background} is not an RGB triple of 0..255")

    @property
    def edge_mode(self) -> EdgeMode:
        """The edge work done: ``edges``, or OFF when ``clean_edges`` is off."""
        return self.edges if self.clean_edges else EdgeMode.OFF

    @property
    def extension(self) -> str:
        """The extension (no dot) the output file gets."""
        return EXTENSIONS[self.format][0]

    def accepts_extension(self, ext: str) -> bool:
        return ext.lower().lstrip(".") in EXTENSIONS[self.format]
