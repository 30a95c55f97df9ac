"""One photo through the models: decode, alpha, RGBA PNG. Used by workers and `mattectl process`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.imageio.compose import cutout_rgba
from mattectl.imageio.png import encode_rgba
from mattectl.imageio.read import decode


@dataclass(frozen=True)
class Cutout:
    png: bytes
    width: int
    height: int
    model: str
    device: str
    decode_ms: float
    inference_ms: float
    encode_ms: float


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class MattingPipeline:
    def __init__(self, models: ModelCache, *, max_pixels: int, min_side: int = 16) -> None:
        self.models = models
        self.max_pixels = max_pixels
        self.min_side = min_side

    def run(self, data: bytes, *, name: str, model: str) -> Cutout:
        """Raises InputError for a bad photo, ModelUnavailableError or BackendError otherwise."""
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
        png = encode_rgba(cutout_rgba(image.rgb, alpha), icc_profile=image.icc_profile)
        encode_ms = _ms_since(start)
        return Cutout(png, image.width, image.height, model, backend.device or "?",
                      decode_ms, inference_ms, encode_ms)
