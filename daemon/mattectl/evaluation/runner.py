"""Run backends over photos whose true alpha is known, and score every prediction.

Full-resolution arrays live only while one image is scored; what is kept per image is its
scores, small JPEG previews and one 100 % window of PNGs (evaluation.closeups) for the report,
so a large set fits in memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Protocol

import numpy as np

from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import MODELS
from mattectl.config import DEFAULT_EXTENSIONS
from mattectl.errors import InputError, MattectlError, ModelUnavailableError
from mattectl.evaluation import visual
from mattectl.evaluation.closeups import SIDE, Closeup, CloseupMaker
from mattectl.evaluation.dataset import load_rgb, read_tags
from mattectl.evaluation.metrics import measure
from mattectl.evaluation.truth import load_truth
from mattectl.imageio.preview import encode_jpeg, fit_size, resize
from mattectl.imageio.refine import interior_holes
from mattectl.watch.filters import ignore_reason

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 360


class Matter(Protocol):
    """What evaluation needs of a model: a backend's ``predict`` on the decoded photo, or (a
    rules preset, see evaluation.presets) ``predict_file`` on the photo's file, which then
    takes the daemon's whole path."""

    def predict(self, rgb: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    alpha: Path
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    metrics: dict[str, float]  # measure()'s keys; empty when the backend failed
    inference_ms: float
    error: str | None = None
    rule: str | None = None  # for a preset: the rule and model this photo took


@dataclass(frozen=True)
class Previews:
    """JPEG bytes: the photo, the truth, and per backend its cutout and its error heat map."""

    photo: bytes
    truth: bytes
    cutouts: dict[str, bytes]
    heat: dict[str, bytes]


@dataclass(frozen=True)
class ImageResult:
    sample: Sample
    width: int = 0
    height: int = 0
    scores: dict[str, Score] = field(default_factory=dict)
    previews: Previews | None = None
    error: str | None = None  # the photo or its truth could not be used
    truth_reading: str | None = None  # how the truth file was read (see evaluation.truth)
    closeup: Closeup | None = None  # the hair at 100 % (None: no usable truth, or not asked)

    def value(self, backend: str, key: str) -> float:
        score = self.scores.get(backend)
        return score.metrics.get(key, math.nan) if score else math.nan


def _is_image(path: Path) -> bool:
    """A photo by the hotfolder's own rules (no hidden, temporary or system files)."""
    return path.is_file() and ignore_reason(PurePath(path.name), DEFAULT_EXTENSIONS) is None


def find_photos(folder: Path) -> list[Path]:
    """The photos directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if _is_image(p))


def choose_models(models: ModelCache, names: Sequence[str] | None) -> list[str]:
    """The models asked for, each checked to run here; every installed model when none is
    named. Raises :class:`ModelUnavailableError` saying how to install a missing one."""
    if not names:
        names = [name for name in MODELS if models.availability(name).ok]
        if not names:
            raise ModelUnavailableError("no model is installed here (see `mattectl models`)")
    for name in names:
        if name not in MODELS:
            raise InputError(f"unknown model '{name}' (known: {', '.join(sorted(MODELS))})")
        found = models.availability(name)
        if not found.ok:
            raise ModelUnavailableError(found.reason)
    return list(names)


def find_samples(images: Path, alphas: Path) -> list[Sample]:
    """Pair every photo in ``images`` with the matte of the same stem in ``alphas``.

    Raises :class:`InputError` when a folder is missing, holds no photo, or a photo has no
    truth (all of them named, so the set can be fixed in one go).
    """
    photos = find_photos(images)
    truths: dict[str, Path] = {}
    for path in find_photos(alphas):
        truths.setdefault(path.stem, path)
    if not photos:
        raise InputError(f"{images}: no photos ({', '.join(DEFAULT_EXTENSIONS)})")
    missing = [p.name for p in photos if p.stem not in truths]
    if missing:
        raise InputError(f"{len(missing)} photo(s) in {images} have no truth of the same name "
                         f"in {alphas}: {', '.join(missing[:10])}")
    tags = read_tags(images)
    return [Sample(p.stem, p, truths[p.stem], tags.get(p.stem, {})) for p in photos]


def _load(sample: Sample) -> tuple[np.ndarray, np.ndarray, str]:
    rgb = load_rgb(sample.image)
    truth = load_truth(sample.alpha.read_bytes(), name=sample.alpha.name,
                       width=rgb.shape[1], height=rgb.shape[0])
    return rgb, truth.alpha, str(truth.reading)


class _PreviewMaker:
    """Small pictures of one image: the photo and truth once, then one pair per prediction."""

    def __init__(self, rgb: np.ndarray, truth: np.ndarray, side: int) -> None:
        self.size = fit_size(rgb.shape[1], rgb.shape[0], side)
        self.truth = truth
        self.photo = resize(rgb, *self.size)
        self.cutouts: dict[str, bytes] = {}
        self.heat: dict[str, bytes] = {}

    def add(self, backend: str, alpha: np.ndarray) -> None:
        small = resize(alpha, *self.size)
        self.cutouts[backend] = encode_jpeg(visual.over_checkerboard(self.photo, small))
        error = resize(np.abs(alpha - self.truth).astype(np.float32), *self.size)
        self.heat[backend] = encode_jpeg(visual.heat_map(error))

    def done(self) -> Previews:
        truth = visual.grey(resize(self.truth, *self.size))
        return Previews(encode_jpeg(self.photo), encode_jpeg(truth), self.cutouts, self.heat)


def _score(backend: Matter, sample: Sample, rgb: np.ndarray,
           truth: np.ndarray) -> tuple[Score, np.ndarray | None]:
    start = time.perf_counter()
    whole_path = getattr(backend, "predict_file", None)
    try:
        if whole_path is not None:
            alpha = whole_path(sample.image.read_bytes(), sample.image.name)
        else:
            alpha = backend.predict(rgb)
    except MattectlError as exc:
        return Score({}, 0.0, str(exc), getattr(backend, "last_rule", None)), None
    elapsed = (time.perf_counter() - start) * 1000
    metrics = measure(alpha, truth)
    metrics["holes"] = float(interior_holes(alpha, truth))
    return Score(metrics, elapsed, rule=getattr(backend, "last_rule", None)), alpha


def evaluate_one(sample: Sample, backends: Mapping[str, Matter],
                 preview_side: int = PREVIEW_SIDE, closeup_side: int = SIDE) -> ImageResult:
    """Every backend on one photo, scored against its truth, with previews and (``closeup_side``
    above 0) the window where the truth is most uncertain, at 100 %."""
    try:
        rgb, truth, reading = _load(sample)
    except (MattectlError, OSError) as exc:
        return ImageResult(sample, error=str(exc))
    previews = _PreviewMaker(rgb, truth, preview_side)
    closeup = CloseupMaker(rgb, truth, closeup_side) if closeup_side > 0 else None
    scores = {}
    for name, backend in backends.items():
        scores[name], alpha = _score(backend, sample, rgb, truth)
        if alpha is not None:
            previews.add(name, alpha)
            if closeup is not None:
                closeup.add(name, alpha)
        del alpha  # one full-resolution prediction at a time
    return ImageResult(sample, rgb.shape[1], rgb.shape[0], scores, previews.done(),
                       truth_reading=reading, closeup=closeup.done() if closeup else None)


def evaluate(samples: Sequence[Sample], backends: Mapping[str, Matter], *,
             preview_side: int = PREVIEW_SIDE, closeup_side: int = SIDE,
             progress: Callable[[ImageResult], None] = lambda result: None) -> list[ImageResult]:
    """:func:`evaluate_one` for every sample, in order; ``progress`` hears of each result."""
    results = []
    for sample in samples:
        result = evaluate_one(sample, backends, preview_side, closeup_side)
        if result.error:
            logger.warning("%s: %s", sample.name, result.error)
        progress(result)
        results.append(result)
    return results
