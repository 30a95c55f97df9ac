"""Facts about one image, gathered once per job: what the rules decide on.

Pure data. ``to_dict()`` is what the job log keeps in the decision, so a decision can be
understood later without the photo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from math import isfinite
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True)
class Box:
    """A pixel rectangle ``[x0, x1) x [y0, y1)`` in full-frame coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True)
class Subject:
    """Where the person is: ``fraction`` of the frame's pixels (0..1) and their bounding box
    (None when the probe found nothing)."""

    fraction: float
    box: Box | None


@dataclass(frozen=True)
class ModelFacts:
    """Whether a model can run here (``reason`` says why not) and how long it is expected to
    take on this image (``expected_from`` says where that figure comes from)."""

    available: bool
    reason: str
    expected_ms: float
    expected_from: str


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    folder: str
    rel_path: str  # the file's path inside its drop folder, '/'-separated
    device: str  # where the models are expected to run (latency depends on it)
    latency_budget_ms: float | None  # the folder's budget per photo; None: unlimited
    subject: Subject | None  # None: unknown (no probe ran, or it could not)
    subject_note: str  # how the subject was found, or why it is unknown
    probe_model: str | None = None  # the probe ran this model on the whole frame: its mask is
    # that model's cutout already, at no further cost
    models: Mapping[str, ModelFacts] = field(default_factory=dict)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.rel_path).name

    def model(self, name: str) -> ModelFacts:
        """Facts about one model; a model nobody asked about counts as unavailable."""
        return self.models.get(name) or ModelFacts(
            False, f"model '{name}' is not known to this installation", float("inf"), "-")

    def with_unavailable(self, name: str, reason: str) -> ImageFacts:
        """The same facts, with one model marked unavailable (it failed to load)."""
        old = self.model(name)
        models = {**self.models, name: replace(old, available=False, reason=reason)}
        return replace(self, models=models)

    def to_dict(self) -> dict[str, Any]:
        subject = None
        if self.subject is not None:
            box = self.subject.box.as_list() if self.subject.box else None
            subject = {"fraction": round(self.subject.fraction, 4), "box": box}
        return {
            "width": self.width, "height": self.height,
            "megapixels": round(self.megapixels, 2), "folder": self.folder,
            "file": self.rel_path, "device": self.device,
            "latency_budget_ms": self.latency_budget_ms,
            "subject": subject, "subject_note": self.subject_note,
            "probe_model": self.probe_model,
            "models": {
                name: {"available": m.available, "reason": m.reason or None,
                       "expected_ms": _rounded(m.expected_ms), "expected_from": m.expected_from}
                for name, m in sorted(self.models.items())
            },
        }


def _rounded(ms: float) -> int | None:
    return round(ms) if isfinite(ms) else None
