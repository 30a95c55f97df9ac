"""One photo through the models: decode, alpha, encoded cutout. Used by workers and
`mattectl process`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.imageio.options import OutputOptions
from mattectl.imageio.read import decode
from mattectl.imageio.write import render


@dataclass(frozen=True)
class Cutout:
    data: bytes  # the finished file, in ``options.format``
    width: int  # of the photo (a trimmed output is smaller)
    height: int
    model: str
    device: str
    decode_ms: float
    inference_ms: float
    encode_ms: float  # compositing, clean edges and encoding
    options: OutputOptions = field(default_factory=OutputOptions)

    @property
    def png(self) -> bytes:
        """The file's bytes (named for the first version, which wrote PNG only)."""
        return self.data

    @property
    def extension(self) -> str:
        return self.options.extension


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class MattingPipeline:
    def __init__(self, models: ModelCache, *, max_pixels: int, min_side: int = 16) -> None:
        self.models = models
        self.max_pixels = max_pixels
        self.min_side = min_side

    def run(self, data: bytes, *, name: str, model: str,
            options: OutputOptions | None = None) -> Cutout:
        """Raises InputError for a bad photo, ModelUnavailableError or BackendError otherwise."""
        options = options or OutputOptions()
        backend = self.models.get(model)
        backend.load()  # a first load is not inference time
        start = time.perf_counter()
        image = decode(data, name=name, max_pixels=self.max_pixels)
        decode_ms = _ms_since(start)
        if min(image.width, image.height) < self.min_side:
            raise InputError(f"{name}: {image.width}x{image.height} is too small to matte "
                             f"(daemon.min_side = {self.min_side})")

        start = time.perf_counter()
        alpha = backend.predict(image.rgb)
        inference_ms = _ms_since(start)

        start = time.perf_counter()
        encoded = render(image, alpha, options, model_side=backend.spec.input_size)
        encode_ms = _ms_since(start)
        return Cutout(encoded.data, image.width, image.height, model, backend.device or "?",
                      decode_ms, inference_ms, encode_ms, options)
