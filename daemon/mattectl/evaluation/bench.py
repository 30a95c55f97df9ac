"""Speed of a backend at a given photo size: per-stage latency, and throughput of the model alone
against the whole pipeline, one photo at a time and with the stages overlapped.

Three ways to run the same photos, measured in one run, alternating in rounds so that a busy
machine slows them alike; each figure is the median over the rounds:

- ``model``: ``predict_batch`` on photos decoded beforehand (the model with its own pre- and
  post-processing, nothing else);
- ``sequential``: read, decode, predict, compose, encode and write one photo after another
  (what the daemon did before the staged pipeline); its per-stage times are the latencies shown;
- ``pipeline``: the same steps in a :class:`~mattectl.jobs.stages.StagedPipeline`.

``ratio`` is pipeline throughput over model throughput, taken in each round (runs seconds
apart) and the median of those reported: 1.0 means the pipeline costs nothing beyond the model.
"""

from __future__ import annotations

import logging
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.errors import InputError
from mattectl.imageio.preview import cover, encode_jpeg
from mattectl.imageio.read import decode
from mattectl.jobs.flood import MattingStages, Photo
from mattectl.jobs.stages import StageTimes, run_all

logger = logging.getLogger(__name__)

NAMED_SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "12mp": (4000, 3000),
               "24mp": (6000, 4000)}
STAGES = ("decode", "probe", "inference", "refinement", "encode")
ABSENT_STAGES = {
    "probe": "not in the pipeline yet (the rules engine's subject probe)",
    "refinement": "not in the pipeline yet (full-resolution alpha refinement)",
}
MAX_PIXELS = 200_000_000


@dataclass(frozen=True)
class Size:
    label: str
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def parse_sizes(text: str) -> list[Size]:
    """``"1080p,24mp,800x600"`` -> sizes; names are those of :data:`NAMED_SIZES`."""
    sizes = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part in NAMED_SIZES:
            sizes.append(Size(part, *NAMED_SIZES[part]))
        elif match := re.fullmatch(r"(\d{2,5})x(\d{2,5})", part):
            sizes.append(Size(part, int(match[1]), int(match[2])))
        else:
            raise InputError(f"unknown size '{part}': use {', '.join(NAMED_SIZES)} or WxH")
    if not sizes:
        raise InputError("no sizes given")
    return sizes


@dataclass(frozen=True)
class Percentiles:
    p50_ms: float
    p95_ms: float
    count: int


def percentiles(values_ms: Sequence[float]) -> Percentiles:
    """Median and 95th percentile (linear interpolation between samples)."""
    values = np.asarray(values_ms, dtype=np.float64)
    return Percentiles(float(np.percentile(values, 50)), float(np.percentile(values, 95)),
                       len(values))


@dataclass(frozen=True)
class BenchResult:
    backend: str
    device: str
    size: Size
    batch: int
    images: int
    rounds: int
    stages: dict[str, Percentiles | None]  # None: the stage does not exist yet
    model_ips: float  # images per second, medians over the rounds
    sequential_ips: float
    pipeline_ips: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    settings: dict[str, int]  # threads (0: the framework's choice), decode/encode workers
    per_round: dict[str, list[float]]  # images/s of each way to run, round by round

    def _ratio(self, way: str) -> float:
        # Each round's ratio compares runs made seconds apart, under the same load.
        return statistics.median(
            a / b for a, b in zip(self.per_round[way], self.per_round["model"], strict=True))

    @property
    def ratio(self) -> float:
        """Staged pipeline over model alone: the median of the rounds' ratios."""
        return self._ratio("pipeline")

    @property
    def sequential_ratio(self) -> float:
        return self._ratio("sequential")


# -- inputs ----------------------------------------------------------------------------------------

def synthetic_photo(width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic stand-in for a portrait: a lit backdrop, a figure, film grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 200, 3).astype(np.float32)
    light = 1.0 - 0.5 * np.hypot(xx / width - 0.3, yy / height - 0.2)
    rgb = base[None, None, :] * light[:, :, None]
    figure = ((xx - width / 2) / (width * 0.22)) ** 2 + ((yy - height * 0.65) / (height * 0.4)) ** 2
    rgb[figure < 1] = rng.uniform(20, 240, 3)
    rgb += rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_inputs(size: Size, count: int, sources: Sequence[np.ndarray] = ()) -> list[bytes]:
    """``count`` JPEGs (quality 92, as cameras write them) at ``size``: the source photos
    scaled to cover the frame, in turn, else synthetic portraits."""
    out = []
    for i in range(count):
        if sources:
            rgb = cover(sources[i % len(sources)], size.width, size.height)
        else:
            rgb = synthetic_photo(size.width, size.height, seed=i)
        out.append(encode_jpeg(rgb, quality=92))
    return out


# -- memory ----------------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where that is not
    possible, and the peak is then the process's lifetime peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the three ways to run -------------------------------------------------------------------------

def _ips(count: int, start: float) -> float:
    return count / (time.perf_counter() - start)


def model_alone(backend: MattingBackend, images: Sequence[np.ndarray], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        backend.predict_batch(images[i:i + batch])
    return _ips(len(images), start)


def sequential(stages: MattingStages, photos: Sequence[Photo]) -> tuple[float, list[StageTimes]]:
    times = []
    start = time.perf_counter()
    for photo in photos:
        t0 = time.perf_counter()
        image = stages.decode(photo)
        t1 = time.perf_counter()
        (alpha,) = stages.infer([image])
        t2 = time.perf_counter()
        stages.encode(photo, image, alpha)
        t3 = time.perf_counter()
        times.append(StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3,
                                (t3 - t0) * 1e3, 1))
    return _ips(len(photos), start), times


def pipelined(stages: MattingStages, photos: Sequence[Photo], *, batch: int,
              decode_workers: int, encode_workers: int) -> float:
    start = time.perf_counter()
    outcomes = run_all(stages, photos, batch=batch, decode_workers=decode_workers,
                       encode_workers=encode_workers)
    ips = _ips(len(photos), start)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise failed[0].error  # type: ignore[misc]
    return ips


@dataclass(frozen=True)
class BenchOptions:
    count: int = 6  # photos per measurement
    rounds: int = 1
    batch: int = 1
    decode_workers: int = 1
    encode_workers: int = 1
    threads: tuple[int, ...] = ()  # CPU thread counts to compare; () keeps the backend's own


@dataclass
class _Runs:
    model: list[float] = field(default_factory=list)
    sequential: list[float] = field(default_factory=list)
    pipeline: list[float] = field(default_factory=list)
    stage_times: list[StageTimes] = field(default_factory=list)


def _round(backend: MattingBackend, stages: MattingStages, images: Sequence[np.ndarray],
           photos: Sequence[Photo], options: BenchOptions, runs: _Runs) -> None:
    runs.model.append(model_alone(backend, images, options.batch))
    ips, times = sequential(stages, photos)
    runs.sequential.append(ips)
    runs.stage_times += times
    runs.pipeline.append(pipelined(stages, photos, batch=options.batch,
                                   decode_workers=options.decode_workers,
                                   encode_workers=options.encode_workers))


def _stage_stats(times: Sequence[StageTimes]) -> dict[str, Percentiles | None]:
    stats: dict[str, Percentiles | None] = {name: None for name in STAGES}
    stats["decode"] = percentiles([t.decode_ms for t in times])
    stats["inference"] = percentiles([t.inference_ms for t in times])
    stats["encode"] = percentiles([t.encode_ms for t in times])
    return stats


def bench(backend: MattingBackend, size: Size, inputs: Sequence[bytes],
          options: BenchOptions) -> list[BenchResult]:
    """Measure one backend at one size on ``inputs`` (encoded photos of that size): one result
    per thread setting, the settings alternating inside every round so that they meet the same
    load. Raises :class:`InputError` when the backend cannot change its thread count."""
    backend.load()
    images = [decode(d, name=f"bench-{i}", max_pixels=MAX_PIXELS).rgb
              for i, d in enumerate(inputs)]
    backend.predict(images[0])  # warm-up: first-call allocations are not the model's speed
    reset_peak_rss()
    backend.reset_peak_memory()
    stages = MattingStages(backend, max_pixels=MAX_PIXELS, collision="overwrite")
    settings: tuple[int | None, ...] = options.threads or (None,)
    runs = {threads: _Runs() for threads in settings}
    with tempfile.TemporaryDirectory(prefix="mattectl-bench-") as tmp:
        photos = [Photo(f"bench-{i}.jpg", data=d, target=Path(tmp) / f"bench-{i}.png")
                  for i, d in enumerate(inputs)]
        for r in range(options.rounds):
            for threads in settings:
                if threads is not None and not backend.set_threads(threads):
                    raise InputError(f"{backend.name} cannot change its thread count")
                _round(backend, stages, images, photos, options, runs[threads])
                logger.info("%s %s threads %s round %d: model %.2f, sequential %.2f, "
                            "pipeline %.2f img/s", backend.name, size.label, threads, r + 1,
                            runs[threads].model[-1], runs[threads].sequential[-1],
                            runs[threads].pipeline[-1])
    gpu = backend.peak_memory()
    rss = peak_rss_mb()
    return [BenchResult(
        backend.name, backend.device or "?", size, options.batch, len(inputs), options.rounds,
        _stage_stats(run.stage_times), statistics.median(run.model),
        statistics.median(run.sequential), statistics.median(run.pipeline), rss,
        gpu / 2**20 if gpu is not None else None,
        {"threads": threads if threads is not None else backend.options.threads,
         "decode_workers": options.decode_workers, "encode_workers": options.encode_workers},
        {"model": run.model, "sequential": run.sequential, "pipeline": run.pipeline},
    ) for threads, run in runs.items()]


def to_json(results: Sequence[BenchResult]) -> dict[str, Any]:
    rows = []
    for r in results:
        row = asdict(r)
        row["ratio"] = round(r.ratio, 4)
        row["sequential_ratio"] = round(r.sequential_ratio, 4)
        rows.append(row)
    return {"units": {"*_ips": "images per second (median over rounds)",
                      "stages": "milliseconds per image, from the sequential run",
                      "ratio": "median over rounds of pipeline / model images/s, both "
                               "measured in the same round",
                      "peak_rss_mb": "peak resident memory of the process during the "
                                     "measurement, MiB",
                      "peak_gpu_mb": "peak GPU memory the backend allocated, MiB; null on CPU"},
            "absent_stages": ABSENT_STAGES, "results": rows}
