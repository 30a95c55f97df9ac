"""The model lifecycle, written once: lazy, locked, idempotent load; unload; predict."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from mattectl.backends import packaged
from mattectl.backends.catalog import ModelSpec
from mattectl.config import ModelsConfig
from mattectl.errors import ModelUnavailableError
from mattectl.gpu import cpu_fallback_warning, nvidia_gpus

logger = logging.getLogger(__name__)


def _check_input(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {rgb.shape} {rgb.dtype}")


class Codec(Protocol):
    """A network's own pre- and post-processing, apart from the network (numpy only, no
    framework): what a photo becomes before the model and what the model's output becomes."""

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """``HxWx3`` uint8 RGB -> the network's input for it, float32 with a leading batch
        axis of 1 (inputs of several photos are concatenated along it)."""
        ...

    def decode(self, output: np.ndarray, width: int, height: int) -> np.ndarray:
        """The network's output for one photo -> its ``height x width`` float32 alpha."""
        ...


class MattingBackend(ABC):
    """Turns an RGB photo into an alpha matte.

    ``predict(rgb)`` takes an ``HxWx3`` ``uint8`` RGB array and returns an ``HxW`` ``float32``
    array in ``[0, 1]`` of the same height and width (1 = subject). Calls are serialised per
    instance, and the first call loads the model. Subclasses implement ``_load`` (returning the
    device they really use, e.g. ``"cpu"`` or ``"cuda:0"``), ``_unload`` and ``_predict``.

    A backend with a :class:`Codec` (``codec``) also implements ``_forward``, the network
    alone: then ``predict`` encodes and decodes in the caller's thread and holds the model only
    for the network (:meth:`forward`), so that several callers resize photos and enlarge
    alphas at once while one of them runs the network, and a model in its own process
    exchanges the network's small input and output instead of the photo and its alpha.
    """

    codec: Codec | None = None

    def __init__(self, spec: ModelSpec, weights: Path, options: ModelsConfig) -> None:
        self.spec = spec
        self.weights = weights
        self.options = options
        self._lock = threading.RLock()
        self._device: str | None = None
        self.last_used = time.monotonic()
        self.warning: str | None = None  # e.g. a GPU machine running this model on its CPU
        # False where another object reports for this one (the process proxy, in the daemon):
        # the device check, and the "loaded model" and "unloaded model" lines of the log
        # (the proxy's say which process; the child's went to the same journal twice).
        self.reports = True
        self.precision: str | None = None  # the number format inference runs in, once loaded

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def loaded(self) -> bool:
        return self._device is not None

    @property
    def device(self) -> str | None:
        """The device the loaded model runs on; None while not loaded."""
        return self._device

    def load(self) -> str:
        with self._lock:
            if self._device is None:
                started = time.perf_counter()
                packaged.check(self.spec, self.weights)  # the shipped file: its checksum
                self._device = self._load()
                logger.log(logging.INFO if self.reports else logging.DEBUG,
                           "loaded model %s from %s on %s%s in %.1f s", self.name,
                           self.weights, self._device, self._where(),
                           time.perf_counter() - started)
                if self.reports:
                    self._check_device(self._device)
            return self._device

    def _check_device(self, device: str) -> None:
        """Say loudly when a GPU machine runs the model on its CPU; with ``require_gpu``, refuse."""
        gpus = nvidia_gpus() if device == "cpu" else []
        self.warning = cpu_fallback_warning(self.name, device, self.options.device, gpus)
        if device == "cpu" and self.options.require_gpu:
            self.unload()
            raise ModelUnavailableError(
                f"model {self.name} loaded on the CPU, and models.require_gpu is set: "
                + (self.warning or "no NVIDIA GPU is visible on this machine"))
        if self.warning:
            logger.error("%s", self.warning)

    def _forget_load(self) -> None:
        """Mark the model as not loaded after its resources vanished (a crashed child process);
        the next call loads it again."""
        with self._lock:
            self._device = None

    def unload(self) -> None:
        with self._lock:
            if self._device is not None:
                self._unload()
                self._device = None
                logger.log(logging.INFO if self.reports else logging.DEBUG,
                           "unloaded model %s", self.name)

    def _where(self) -> str:
        """Where the model runs, for the log's "loaded model" line, when not in this process."""
        return ""

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        _check_input(rgb)
        if self.codec is not None:
            return self.predict_batch([rgb])[0]
        with self._lock:
            self.load()
            self.last_used = time.monotonic()
            alpha = self._predict(rgb)
            self.last_used = time.monotonic()
        self._check_output(rgb, alpha)
        return alpha

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`predict` for several photos in one call, alphas in the same order. Backends
        that can run photos as one batch do (U²-Net: on a GPU), the others run them in turn."""
        for rgb in images:
            _check_input(rgb)
        codec = self.codec
        if codec is not None:
            outputs = self.forward(np.concatenate([codec.encode(rgb) for rgb in images]))
            alphas = [codec.decode(output, rgb.shape[1], rgb.shape[0])
                      for output, rgb in zip(outputs, images, strict=True)]
        else:
            with self._lock:
                self.load()
                self.last_used = time.monotonic()
                alphas = self._predict_batch(list(images))
                self.last_used = time.monotonic()
        if len(alphas) != len(images):
            raise AssertionError(f"{type(self).__name__} returned {len(alphas)} alphas for "
                                 f"{len(images)} photos")
        for rgb, alpha in zip(images, alphas, strict=True):
            self._check_output(rgb, alpha)
        return alphas

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """The network alone on ``inputs`` (its codec's, concatenated): one output per input,
        along the first axis. Loads the model on first use; serialised like ``predict``."""
        with self._lock:
            self.load()
            self.last_used = time.monotonic()
            outputs = self._forward(inputs)
            self.last_used = time.monotonic()
        if len(outputs) != len(inputs):
            raise AssertionError(f"{type(self).__name__} returned {len(outputs)} outputs for "
                                 f"{len(inputs)} inputs")
        return outputs

    def _forward(self, inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no codec: use predict")

    def set_threads(self, threads: int) -> bool:
        """Use ``threads`` CPU threads for inference from now on; False when this backend
        cannot change it while loaded."""
        return False

    def reset_peak_memory(self) -> None:
        """Start measuring a new peak of accelerator memory (nothing to do on the CPU)."""
        return None

    def peak_memory(self) -> int | None:
        """Bytes of accelerator memory this backend held at most since the last reset; None
        when it runs on the CPU or cannot tell."""
        return None

    def relay_output(self) -> None:
        """Pass on what the model's own process wrote while idle (a stack dump, a warning);
        nothing to do for a model in the daemon's process."""
        return None

    def forward_profile(self, precision: str, passes: int) -> tuple[list[float], float] | None:
        """The network alone (no pre- or post-processing) in ``precision``: milliseconds of
        each of ``passes`` forward passes on one input, and the floating-point operations of
        one pass; None when this backend cannot tell."""
        return None

    def _check_output(self, rgb: np.ndarray, alpha: np.ndarray) -> None:
        if alpha.shape != rgb.shape[:2] or alpha.dtype != np.float32:
            raise AssertionError(
                f"{type(self).__name__} broke its contract: {alpha.shape} {alpha.dtype}")

    def _predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self._predict(rgb) for rgb in images]

    @abstractmethod
    def _load(self) -> str: ...

    @abstractmethod
    def _unload(self) -> None: ...

    @abstractmethod
    def _predict(self, rgb: np.ndarray) -> np.ndarray: ...
