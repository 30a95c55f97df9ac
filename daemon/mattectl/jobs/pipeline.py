"""One photo through the models: decode, alpha, encoded cutout. Used by workers and
`mattectl process`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.imageio.options import OutputOptions
from mattectl.imageio.read import DecodedImage, decode
from mattectl.imageio.write import render
from mattectl.jobs.stages import ms_since
from mattectl.rules.planner import FolderRules, RulePlanner


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
    decision: dict[str, Any] | None = None  # the rules engine's decision, when one was taken

    @property
    def png(self) -> bytes:
        """The file's bytes (named for the first version, which wrote PNG only)."""
        return self.data

    @property
    def extension(self) -> str:
        return self.options.extension


def decode_photo(data: bytes, *, name: str, max_pixels: int, min_side: int) -> DecodedImage:
    """Decode a photo and refuse one too small to matte; raises InputError naming it."""
    image = decode(data, name=name, max_pixels=max_pixels)
    if min(image.width, image.height) < min_side:
        raise InputError(f"{name}: {image.width}x{image.height} is too small to matte "
                         f"(daemon.min_side = {min_side})")
    return image


class MattingPipeline:
    def __init__(self, models: ModelCache, *, max_pixels: int, min_side: int = 16,
                 planner: RulePlanner | None = None) -> None:
        self.models = models
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.planner = planner

    def run(self, data: bytes, *, name: str, model: str, options: OutputOptions | None = None,
            rules: FolderRules | None = None) -> Cutout:
        """Raises InputError for a bad photo, ModelUnavailableError or BackendError otherwise.

        With ``rules``, the rules engine chooses the model per photo (``model`` is not used),
        and the deciding rule's ``output`` settings replace those of ``options`` it names; the
        cutout's ``options`` are the ones it was written with.
        """
        options = options or OutputOptions()
        if rules is not None:
            return self._run_rules(data, name=name, options=options, rules=rules)
        backend = self.models.get(model)
        backend.load()  # a first load is not inference time
        image, decode_ms = self._decode(data, name)

        start = time.perf_counter()
        alpha = backend.predict(image.rgb)
        inference_ms = ms_since(start)

        encoded, encode_ms = self._render(image, alpha, options, backend.spec.input_size)
        return Cutout(encoded, image.width, image.height, model, backend.device or "?",
                      decode_ms, inference_ms, encode_ms, options)

    def _run_rules(self, data: bytes, *, name: str, options: OutputOptions,
                   rules: FolderRules) -> Cutout:
        if self.planner is None:
            raise AssertionError("a folder uses rules, but the pipeline has no rule planner")
        image, decode_ms = self._decode(data, name)
        matte = self.planner.matte(image.rgb, rules, name)
        if matte.output is not None:  # the deciding rule's output keys replace the folder's
            options = matte.output.apply(options)
        encoded, encode_ms = self._render(image, matte.alpha, options, matte.model_side)
        return Cutout(encoded, image.width, image.height, matte.model, matte.device, decode_ms,
                      matte.inference_ms, encode_ms, options, matte.decision)

    def _decode(self, data: bytes, name: str) -> tuple[DecodedImage, float]:
        start = time.perf_counter()
        image = decode_photo(data, name=name, max_pixels=self.max_pixels,
                             min_side=self.min_side)
        return image, ms_since(start)

    @staticmethod
    def _render(image: DecodedImage, alpha: np.ndarray, options: OutputOptions,
                model_side: int | None) -> tuple[bytes, float]:
        start = time.perf_counter()
        encoded = render(image, alpha, options, model_side=model_side)
        return encoded.data, ms_since(start)
