"""Numbers over an evaluation: means per backend (and per tag), worst images first, JSON."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mattectl.evaluation.metrics import METRICS, Region
from mattectl.evaluation.runner import ImageResult

METRIC_KEYS = [f"{key}_{region}" for region in Region for key in METRICS]
DEFAULT_SORT = "mae_image"


def mean_scores(results: Sequence[ImageResult], backend: str) -> dict[str, float]:
    """Per metric, the mean over the images the backend scored (NaN values, e.g. an empty band,
    are left out); ``images`` is how many were scored, ``inference_ms`` their mean latency."""
    scored = [r.scores[backend] for r in results
              if backend in r.scores and not r.scores[backend].error]
    out: dict[str, float] = {"images": float(len(scored))}
    for key in METRIC_KEYS:
        values = [s.metrics[key] for s in scored if not math.isnan(s.metrics[key])]
        out[key] = float(np.mean(values)) if values else math.nan
    out["inference_ms"] = float(np.mean([s.inference_ms for s in scored])) if scored else math.nan
    out["holes"] = float(sum(s.metrics.get("holes", 0) for s in scored))  # summed, not a mean
    return out


def group_means(results: Sequence[ImageResult], backend: str,
                tag: str) -> dict[str, dict[str, float]]:
    """:func:`mean_scores` per value of a tag (e.g. per background kind)."""
    values = sorted({r.sample.tags[tag] for r in results if tag in r.sample.tags})
    return {value: mean_scores([r for r in results if r.sample.tags.get(tag) == value], backend)
            for value in values}


def tags_of(results: Sequence[ImageResult]) -> list[str]:
    return sorted({tag for r in results for tag in r.sample.tags})


def worst_first(results: Sequence[ImageResult], backends: Sequence[str],
                key: str = DEFAULT_SORT) -> list[ImageResult]:
    """Images ordered by their worst backend's ``key``, worst first; failures lead."""

    def badness(result: ImageResult) -> float:
        if result.error or any(s.error for s in result.scores.values()):
            return math.inf
        values = [result.value(b, key) for b in backends]
        values = [v for v in values if not math.isnan(v)]
        return max(values) if values else -math.inf

    return sorted(results, key=badness, reverse=True)


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def to_json(results: Sequence[ImageResult], backends: Sequence[str],
            devices: dict[str, str]) -> dict[str, Any]:
    """Everything the text output shows, for machines (NaN becomes null)."""
    return {
        "normalisation": {key: info.unit for key, info in METRICS.items()},
        "regions": {"image": "every pixel",
                    "band": "pixels whose true alpha is strictly between 0 and 1"},
        "devices": devices,
        "means": {b: {k: _clean(v) for k, v in mean_scores(results, b).items()}
                  for b in backends},
        "groups": {tag: {b: {value: {k: _clean(v) for k, v in means.items()}
                             for value, means in group_means(results, b, tag).items()}
                         for b in backends} for tag in tags_of(results)},
        "images": [{
            "name": r.sample.name, "image": str(r.sample.image), "truth": str(r.sample.alpha),
            "width": r.width, "height": r.height, "tags": r.sample.tags, "error": r.error,
            "truth_reading": r.truth_reading,
            "scores": {b: {"error": s.error, "inference_ms": round(s.inference_ms, 1),
                           **({"rule": s.rule} if s.rule else {}),
                           **{k: _clean(v) for k, v in s.metrics.items()}}
                       for b, s in r.scores.items()},
            "closeup": None if r.closeup is None else {
                "window": dataclasses.asdict(r.closeup.window),
                "sad": {b: _clean(v) for b, v in r.closeup.sad.items()}},
        } for r in results],
    }
