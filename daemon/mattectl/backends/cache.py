"""One backend instance per model, loaded on first use and unloaded when idle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mattectl.backends import BACKENDS, backend_class, modelscope_cache
from mattectl.backends.base import MattingBackend
from mattectl.backends.catalog import MODELS, Availability, ModelSpec, availability
from mattectl.backends.isolated import IsolatedBackend
from mattectl.config import ModelsConfig
from mattectl.errors import ModelUnavailableError
from mattectl.report import ModelReport

logger = logging.getLogger(__name__)


class ModelCache:
    def __init__(self, options: ModelsConfig, models_dir: Path) -> None:
        self.options = options
        self.models_dir = models_dir
        self._backends: dict[str, MattingBackend] = {}
        self._lock = threading.Lock()

    def availability(self, name: str) -> Availability:
        roots = modelscope_cache.search_roots(self.options.modelscope_cache, self.models_dir)
        return availability(MODELS[name], self.models_dir, self.options.paths.get(name), roots)

    def _build(self, spec: ModelSpec, weights: Path) -> MattingBackend:
        if self.options.isolation == "process":
            return IsolatedBackend(spec, weights, self.options, BACKENDS[spec.backend])
        return backend_class(spec.backend)(spec, weights, self.options)

    def get(self, name: str) -> MattingBackend:
        """The backend for a model (not necessarily loaded yet); raises if it cannot run here."""
        with self._lock:
            backend = self._backends.get(name)
            if backend is not None:
                return backend
            found = self.availability(name)
            if not found.ok or found.weights is None:
                raise ModelUnavailableError(found.reason)
            backend = self._build(MODELS[name], found.weights)
            self._backends[name] = backend
            return backend

    def loaded(self) -> dict[str, str]:
        """``{model: device}`` for every loaded model."""
        with self._lock:
            return {name: b.device for name, b in self._backends.items() if b.device}

    def describe(self, names: list[str]) -> dict[str, ModelReport]:
        """What ``mattectl status`` shows for each model; ``warning`` says when a model runs on
        the CPU of a machine that has a GPU."""
        loaded = self.loaded()
        with self._lock:
            warnings = {name: b.warning for name, b in self._backends.items() if b.loaded}
            formats = {name: b.precision for name, b in self._backends.items() if b.loaded}
        out = {}
        for name in names:
            found = self.availability(name)
            out[name] = ModelReport(
                available=found.ok, reason=found.reason, backend=MODELS[name].backend,
                isolation=self.options.isolation,
                weights=str(found.weights) if found.weights else None,
                loaded=name in loaded, device=loaded.get(name), precision=formats.get(name),
                warning=warnings.get(name))
        return out

    def unload_idle(self, max_idle_s: float, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        with self._lock:
            backends = list(self._backends.values())
        unloaded = []
        for backend in backends:
            if backend.loaded and now - backend.last_used > max_idle_s:
                backend.unload()
                unloaded.append(backend.name)
        return unloaded

    def relay_output(self) -> None:
        """What the models' own processes wrote while idle, into the daemon's log."""
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            backend.relay_output()

    def unload_all(self) -> None:
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            backend.unload()


@contextmanager
def closing_models(models: ModelCache) -> Iterator[ModelCache]:
    """Unload every model (ending their inference processes) when the block ends."""
    try:
        yield models
    finally:
        models.unload_all()
