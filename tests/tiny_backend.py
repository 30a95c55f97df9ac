"""Small models with the real backend interface, for tests about the daemon rather than a model.

``TinyBackend`` mattes by brightness (bright subject, dark background) in a few milliseconds, so a
test can push a thousand photos through the real daemon. ``GatedBackend`` blocks inside
``_predict`` until the test opens its gate: a hang the test controls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from mattectl import backends
from mattectl.backends import catalog
from mattectl.backends.base import MattingBackend
from mattectl.backends.catalog import ModelSpec

GATE = threading.Event()


class TinyBackend(MattingBackend):
    def _load(self) -> str:
        return "cpu"

    def _unload(self) -> None:
        pass

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        return np.clip((cv2.blur(luma, (5, 5)) - 0.3) * 4.0, 0.0, 1.0).astype(np.float32)


class GatedBackend(TinyBackend):
    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        GATE.wait(timeout=120)
        return super()._predict(rgb)


@pytest.fixture
def tiny_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Register the models ``tiny`` and ``gated``; returns a models dir holding their 'weights'."""
    models_dir = tmp_path / "tiny-models"
    for name, cls in (("tiny", "TinyBackend"), ("gated", "GatedBackend")):
        monkeypatch.setitem(backends.BACKENDS, name, f"tests.tiny_backend:{cls}")
        monkeypatch.setitem(catalog.MODELS, name, ModelSpec(
            name, name, name, "test model", f"{name}.bin", "numpy", (".bin",)))
        (models_dir / name).mkdir(parents=True)
        (models_dir / name / f"{name}.bin").write_bytes(b"no weights needed")
    GATE.clear()
    yield models_dir
    GATE.set()  # never leave a worker blocked
