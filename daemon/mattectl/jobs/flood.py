"""Many photos through one model at once: the matting steps as stages of a StagedPipeline.

The steps are those of :class:`~mattectl.jobs.pipeline.MattingPipeline` (the same decoding
and rendering functions), split so that decoding and encoding overlap inference.
``mattectl process`` and ``mattectl bench`` run photos through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.errors import InputError, OutputError
from mattectl.fsutil import write_file
from mattectl.imageio import write as output
from mattectl.imageio.compose import Layers
from mattectl.imageio.options import OutputOptions
from mattectl.imageio.read import DecodedImage
from mattectl.jobs.pipeline import decode_photo


@dataclass(frozen=True)
class Photo:
    name: str  # how errors name it
    path: Path | None = None  # read in the decode stage when ``data`` is None
    data: bytes | None = None
    target: Path | None = None  # where the cutout goes; None keeps it in memory only


@dataclass(frozen=True)
class Written:
    path: Path | None  # None when not written (no target, or skipped by the collision policy)
    width: int
    height: int
    png_bytes: int


class MattingStages:
    """Decode (read + decode), infer (the backend, batched), encode (refine + write: clean
    edges, then the file encoded and written)."""

    def __init__(self, backend: MattingBackend, *, max_pixels: int, min_side: int = 16,
                 collision: str = "suffix", options: OutputOptions | None = None) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.collision = collision
        self.options = options or OutputOptions()

    def decode(self, photo: Photo) -> DecodedImage:
        data = photo.data
        if data is None:
            if photo.path is None:
                raise ValueError(f"{photo.name}: neither a path nor data")
            try:
                data = photo.path.read_bytes()
            except OSError as exc:
                raise InputError(f"{photo.name}: cannot read: {exc.strerror or exc}") from None
        return decode_photo(data, name=photo.name, max_pixels=self.max_pixels,
                            min_side=self.min_side)

    def infer(self, batch: list[DecodedImage]) -> list[np.ndarray]:
        return self.backend.predict_batch([image.rgb for image in batch])

    def encode(self, photo: Photo, image: DecodedImage, alpha: np.ndarray) -> Written:
        """The encode stage of the pipeline: :meth:`refine`, then :meth:`write`."""
        return self.write(photo, image, self.refine(image, alpha))

    def refine(self, image: DecodedImage, alpha: np.ndarray) -> Layers:
        """Clean edges on the model's alpha (see :func:`~mattectl.imageio.write.refine`)."""
        return output.refine(image, alpha, self.options, model_side=self.backend.spec.input_size)

    def write(self, photo: Photo, image: DecodedImage, cut: Layers) -> Written:
        """Encode the file and write it to ``photo.target`` (when there is one)."""
        encoded = output.encode_cut(image, cut, self.options)
        written = None
        if photo.target is not None:
            try:
                written = write_file(photo.target, encoded.data, self.collision)
            except OSError as exc:
                raise OutputError(f"cannot write {photo.target}: {exc.strerror or exc}") from exc
        return Written(written, image.width, image.height, len(encoded.data))
