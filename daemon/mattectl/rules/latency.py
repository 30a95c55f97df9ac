"""Expected inference time per model, device and image size class, from measured jobs.

Pure: the caller hands in the samples (the daemon reads them from its job log, see
``mattectl.matting.latency``). Each estimate is the median of the most recent measured jobs of
its group (model, device, size class); until a group has ``min_samples`` jobs, a prior stands
in. The priors are rough figures measured on these machines (U²-Net, CPU) or guessed (GPU,
BSHM); a few jobs replace them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# (upper bound in megapixels, label); U²-Net's cost barely depends on size (it sees 320x320),
# BSHM's grows with the pixel count.
SIZE_CLASSES: tuple[tuple[float, str], ...] = (
    (1.0, "<1 MP"), (4.0, "1-4 MP"), (12.0, "4-12 MP"), (24.0, "12-24 MP"),
    (float("inf"), ">=24 MP"),
)


def size_class(megapixels: float) -> str:
    return next(label for bound, label in SIZE_CLASSES if megapixels < bound)


def device_kind(device: str | None) -> str:
    """``cuda:1`` -> ``cuda``; priors are per kind of device, measurements per device."""
    return (device or "cpu").split(":")[0]


@dataclass(frozen=True)
class Prior:
    base_ms: float
    per_megapixel_ms: float

    def at(self, megapixels: float) -> float:
        return self.base_ms + self.per_megapixel_ms * megapixels


# U²-Net CPU figures: MODELS.md (320x320, 2 threads) plus pre/post-processing per megapixel.
PRIORS: dict[tuple[str, str], Prior] = {
    ("u2netp", "cpu"): Prior(900, 60),
    ("u2net", "cpu"): Prior(2100, 60),
    ("u2net_human_seg", "cpu"): Prior(2100, 60),
    ("bshm", "cpu"): Prior(1500, 1500),
    ("u2netp", "cuda"): Prior(30, 15),
    ("u2net", "cuda"): Prior(60, 15),
    ("u2net_human_seg", "cuda"): Prior(60, 15),
    ("bshm", "cuda"): Prior(100, 60),
}
UNKNOWN_PRIOR = Prior(3000, 1500)


@dataclass(frozen=True)
class Estimate:
    ms: float
    source: str  # e.g. "median of 12 jobs (cpu, 1-4 MP)" or "prior (cpu)"


class Sample(Protocol):
    """One measured job, as the job log keeps it."""

    @property
    def model(self) -> str: ...
    @property
    def device(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def inference_ms(self) -> float | None: ...


class LatencyModel:
    """Estimates from a fixed list of samples (newest first, as the repository returns them)."""

    def __init__(self, samples: Iterable[Sample], *, window: int = 20,
                 min_samples: int = 3) -> None:
        self.min_samples = min_samples
        self._groups: dict[tuple[str, str, str], list[float]] = {}
        for s in samples:
            if s.width and s.height and s.inference_ms is not None:
                key = (s.model, s.device or "cpu", size_class(s.width * s.height / 1e6))
                group = self._groups.setdefault(key, [])
                if len(group) < window:
                    group.append(s.inference_ms)

    def expected(self, model: str, device: str, megapixels: float) -> Estimate:
        label = size_class(megapixels)
        measured = self._groups.get((model, device, label), [])
        if len(measured) >= self.min_samples:
            return Estimate(statistics.median(measured),
                            f"median of {len(measured)} jobs ({device}, {label})")
        kind = device_kind(device)
        prior = PRIORS.get((model, kind), UNKNOWN_PRIOR)
        return Estimate(prior.at(megapixels), f"prior ({kind}; {len(measured)} jobs so far)")
