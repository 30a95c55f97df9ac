"""Helpers for the evaluation tests: a small real evaluation set and backends built on the real
interface that do real (simple) work, so runner and report tests need no big model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.backends.catalog import ModelSpec
from mattectl.config import ModelsConfig
from mattectl.evaluation import dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class ColourRuleBackend(MattingBackend):
    """Alpha from a colour rule: distance from the mean colour of the photo's border, scaled by
    ``gain`` (a crude keyer: real work on the real pixels, at model speed for tests)."""

    def __init__(self, name: str, gain: float) -> None:
        spec = ModelSpec(name, name, name, "colour rule (tests)", "-", "numpy")
        super().__init__(spec, Path("-"), ModelsConfig())
        self.gain = gain

    def _load(self) -> str:
        return "cpu"

    def _unload(self) -> None:
        pass

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        pixels = rgb.astype(np.float32)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        distance = np.linalg.norm(pixels - border.mean(axis=0), axis=2)
        return np.clip(distance * self.gain / 255.0, 0, 1).astype(np.float32)


def small_subjects(count: int) -> list[dataset.Subject]:
    """The ``count`` smallest photos of the human test set with their published mattes."""
    photos = DATA / dataset.STANDARD_PHOTOS
    smallest = sorted(photos.iterdir(), key=lambda p: p.stat().st_size)[:count]
    mattes = DATA / dataset.STANDARD_MATTES
    by_name = {s.name: s for s in dataset.subjects_from_mattes(photos, mattes)
               if s.name in {p.stem for p in smallest}}
    return [by_name[p.stem] for p in smallest]


def write_small_set(out: Path, subjects: int = 2, backgrounds: int = 2,
                    scales: tuple[float, ...] = (1.0,)) -> list[dataset.Entry]:
    chosen = dataset.standard_backgrounds(DATA)[:backgrounds]
    return dataset.write_set(out, dataset.plan(small_subjects(subjects), chosen, scales))
