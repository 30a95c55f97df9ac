"""Speed of a backend at a given photo size: per-stage latency, and throughput of the model alone
against the whole pipeline, one photo at a time and with the stages overlapped.

Three ways to run the same photos, measured in one run, alternating in rounds so that a busy
machine slows them alike; each figure is the median over the rounds:

- ``model``: ``predict_batch`` on photos decoded beforehand (the model with its own pre- and
  post-processing, nothing else);
- ``sequential``: read, decode, predict, refine, encode and write one photo after another
  (what the daemon did before the staged pipeline); its per-stage times are the latencies shown;
- ``pipeline``: the same steps in a :class:`~mattectl.matting.stages.StagedPipeline`.

Every step is :class:`~mattectl.matting.pipeline.PhotoPipeline`'s, the path the daemon's
workers run; ``daemon_bench`` (``mattectl bench --daemon``) measures the daemon itself.

The subject probe (:data:`STAGE_NOTES` says what each stage covers) is timed in a pass of its
own over the decoded photos, in every round just before the sequential run: a folder with rules
runs it before the chosen model, but the three runs above matte with the backend alone, as
``mattectl process`` does, so their throughputs stay comparable with and without it.

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
from mattectl.backends.cache import ModelCache
from mattectl.backends.probe import PROBE_MODELS, probe
from mattectl.backends.u2net_processing import Resample
from mattectl.errors import InputError
from mattectl.imageio.options import OutputOptions
from mattectl.imageio.preview import cover, encode_jpeg
from mattectl.imageio.read import decode
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, PhotoStages, Recipe
from mattectl.matting.publish import publish_cutout
from mattectl.matting.stages import run_all

logger = logging.getLogger(__name__)

NAMED_SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "12mp": (4000, 3000),
               "24mp": (6000, 4000)}
STAGES = ("decode", "probe", "inference", "refinement", "encode")
STAGE_NOTES = {
    "decode": "the JPEG decoded to RGB (orientation and colour applied)",
    "probe": "the rules engine's subject probe as a folder with rules runs it before the chosen "
             "model (backends.probe.probe): the photo squashed to 320x320, one pass of the "
             "probe model (the first of u2netp, u2net, u2net_human_seg installed), the "
             "subject's share and box; timed in a pass of its own. When the decision is the "
             "probe model on the whole frame, the daemon reuses the probe's mask instead of "
             "running inference again",
    "inference": "the backend's predict on the whole photo, its pre- and post-processing "
                 "included",
    "refinement": "the finish stage (imageio.write.refine) with the default edges = "
                  "'matting': holes inside the subject filled (refine.fill_holes), the "
                  "uncertain band solved by closed-form matting against the photo "
                  "(refine.refine_matting), then the subject's colour estimated in the band "
                  "(refine.foreground_tiles)",
    "encode": "the output file encoded (PNG, with the source's ICC profile and metadata) and "
              "written",
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
    stages: dict[str, Percentiles | None]  # None: not measured (the probe, asked off)
    model_ips: float  # images per second, medians over the rounds
    sequential_ips: float
    pipeline_ips: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    settings: dict[str, int]  # threads (0: the framework's choice), decode/encode workers,
    # clean_edges (1: on)
    per_round: dict[str, list[float]]  # images/s of each way to run, round by round
    probe_model: str | None = None  # the model that probed; None when the probe was off

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


@dataclass(frozen=True)
class Course:
    """The daemon's path for one model, and where the bench writes its cutouts."""

    pipeline: PhotoPipeline
    recipe: Recipe
    out: Path

    def write(self, photo: Photo, cutout: Cutout) -> Path | None:
        target = self.out / Path(photo.name).with_suffix(f".{cutout.extension}")
        return publish_cutout(cutout.data, target, root=self.out, policy="overwrite",
                              name=photo.name)


def sequential(course: Course, photos: Sequence[Photo]
               ) -> tuple[float, dict[str, list[float]]]:
    """Images/s, and milliseconds per photo of decode, inference, refinement and encode."""
    times: dict[str, list[float]] = {"decode": [], "inference": [], "refinement": [],
                                     "encode": []}
    pipeline, recipe = course.pipeline, course.recipe
    start = time.perf_counter()
    for photo in photos:
        t0 = time.perf_counter()
        decoded = pipeline.decode(photo)
        t1 = time.perf_counter()
        matte = pipeline.matte(decoded, photo.name, recipe)
        t2 = time.perf_counter()
        cutout = pipeline.finish(decoded, matte, recipe)
        course.write(photo, cutout)
        t3 = time.perf_counter()
        times["decode"].append((t1 - t0) * 1e3)
        times["inference"].append((t2 - t1) * 1e3)
        times["refinement"].append(cutout.refine_ms)
        times["encode"].append((t3 - t2) * 1e3 - cutout.refine_ms)
    return _ips(len(photos), start), times


@dataclass(frozen=True)
class Prober:
    """The subject probe as :class:`~mattectl.matting.planner.RulePlanner` runs it."""

    backend: MattingBackend
    resample: Resample

    @classmethod
    def find(cls, models: ModelCache) -> Prober | None:
        """The probe the daemon would use: the first installed of :data:`PROBE_MODELS`, with
        the configured resampling; None when none is installed."""
        name = next((m for m in PROBE_MODELS if models.availability(m).ok), None)
        return None if name is None else cls(models.get(name), models.options.u2net.resample)

    def times(self, images: Sequence[np.ndarray]) -> list[float]:
        """Milliseconds of each photo's whole probe (shrink, pass, subject)."""
        out = []
        for rgb in images:
            start = time.perf_counter()
            probe(self.backend, rgb, self.resample)
            out.append((time.perf_counter() - start) * 1e3)
        return out


def pipelined(course: Course, photos: Sequence[Photo], *, batch: int,
              decode_workers: int, encode_workers: int) -> float:
    stages = PhotoStages(course.pipeline, course.recipe, course.write)
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
    clean_edges: bool = True  # as a folder's clean_edges: the refinement stage on or off


@dataclass
class _Runs:
    model: list[float] = field(default_factory=list)
    sequential: list[float] = field(default_factory=list)
    pipeline: list[float] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})


def _round(backend: MattingBackend, course: Course, images: Sequence[np.ndarray],
           photos: Sequence[Photo], options: BenchOptions, runs: _Runs,
           prober: Prober | None) -> None:
    runs.model.append(model_alone(backend, images, options.batch))
    if prober is not None:
        runs.stage_ms["probe"] += prober.times(images)
    ips, times = sequential(course, photos)
    runs.sequential.append(ips)
    for name, values in times.items():
        runs.stage_ms[name] += values
    runs.pipeline.append(pipelined(course, photos, batch=options.batch,
                                   decode_workers=options.decode_workers,
                                   encode_workers=options.encode_workers))


def _stage_stats(stage_ms: dict[str, list[float]]) -> dict[str, Percentiles | None]:
    return {name: percentiles(stage_ms[name]) if stage_ms[name] else None for name in STAGES}


class _OneModel:
    """The models a bench's pipeline may ask for: the one being measured."""

    def __init__(self, backend: MattingBackend) -> None:
        self.backend = backend

    def get(self, name: str) -> MattingBackend:
        assert name == self.backend.name, name
        return self.backend


def bench(backend: MattingBackend, size: Size, inputs: Sequence[bytes],
          options: BenchOptions, prober: Prober | None = None) -> list[BenchResult]:
    """Measure one backend at one size on ``inputs`` (encoded photos of that size): one result
    per thread setting, the settings alternating inside every round so that they meet the same
    load. With ``prober``, the subject probe is timed too. Raises :class:`InputError` when the
    backend cannot change its thread count."""
    backend.load()
    images = [decode(d, name=f"bench-{i}", max_pixels=MAX_PIXELS).rgb
              for i, d in enumerate(inputs)]
    backend.predict(images[0])  # warm-up: first-call allocations are not the model's speed
    if prober is not None:
        prober.backend.load()
        prober.times(images[:1])  # warm-up: a probe model other than the backend's first call
    reset_peak_rss()
    backend.reset_peak_memory()
    pipeline = PhotoPipeline(_OneModel(backend), max_pixels=MAX_PIXELS)
    recipe = Recipe(backend.name, options=OutputOptions(clean_edges=options.clean_edges))
    settings: tuple[int | None, ...] = options.threads or (None,)
    runs = {threads: _Runs() for threads in settings}
    with tempfile.TemporaryDirectory(prefix="mattectl-bench-") as tmp:
        course = Course(pipeline, recipe, Path(tmp))
        photos = [Photo(f"bench-{i}.jpg", data=d) for i, d in enumerate(inputs)]
        for r in range(options.rounds):
            for threads in settings:
                if threads is not None and not backend.set_threads(threads):
                    raise InputError(f"{backend.name} cannot change its thread count")
                _round(backend, course, images, photos, options, runs[threads], prober)
                logger.info("%s %s threads %s round %d: model %.2f, sequential %.2f, "
                            "pipeline %.2f img/s", backend.name, size.label, threads, r + 1,
                            runs[threads].model[-1], runs[threads].sequential[-1],
                            runs[threads].pipeline[-1])
    gpu = backend.peak_memory()
    rss = peak_rss_mb()
    return [BenchResult(
        backend.name, backend.device or "?", size, options.batch, len(inputs), options.rounds,
        _stage_stats(run.stage_ms), statistics.median(run.model),
        statistics.median(run.sequential), statistics.median(run.pipeline), rss,
        gpu / 2**20 if gpu is not None else None,
        {"threads": threads if threads is not None else backend.options.threads,
         "decode_workers": options.decode_workers, "encode_workers": options.encode_workers,
         "clean_edges": int(options.clean_edges)},
        {"model": run.model, "sequential": run.sequential, "pipeline": run.pipeline},
        prober.backend.name if prober is not None else None,
    ) for threads, run in runs.items()]


def to_json(results: Sequence[BenchResult]) -> dict[str, Any]:
    rows = []
    for r in results:
        row = asdict(r)
        row["ratio"] = round(r.ratio, 4)
        row["sequential_ratio"] = round(r.sequential_ratio, 4)
        rows.append(row)
    return {"units": {"*_ips": "images per second (median over rounds)",
                      "stages": "milliseconds per image: p50, p95 and the number of "
                                "samples; the probe from its own pass, the others from the "
                                "sequential run; null: not measured (--no-probe)",
                      "ratio": "median over rounds of pipeline / model images/s, both "
                               "measured in the same round",
                      "peak_rss_mb": "peak resident memory of the process during the "
                                     "measurement, MiB",
                      "peak_gpu_mb": "peak GPU memory the backend allocated, MiB; null on CPU"},
            "stage_notes": STAGE_NOTES, "results": rows}


# -- the network alone, per number format ------------------------------------------------------

@dataclass(frozen=True)
class ForwardResult:
    """One backend in one number format: the network's forward pass alone on one 320x320 input,
    and the backend's whole predict (pre-processing, forward, post-processing) on ``size``."""

    backend: str
    device: str
    precision: str
    size: Size
    forward_ms: float  # medians over every pass of every round
    predict_ms: float
    gflop: float  # floating-point operations of one forward pass, in 1e9
    per_round: dict[str, list[float]]  # forward and predict medians, round by round

    @property
    def gflops(self) -> float:
        """Achieved rate of the forward pass: the distance to the hardware's limit."""
        return self.gflop / (self.forward_ms / 1000.0)


def profile_precisions(backends: dict[str, MattingBackend], size: Size,
                       inputs: Sequence[bytes], *, passes: int = 5,
                       rounds: int = 3) -> list[ForwardResult]:
    """``backends``: the same model loaded in each number format (by name). The formats
    alternate inside every round so that other load on the machine hits them alike."""
    images = [decode(d, name=f"bench-{i}", max_pixels=MAX_PIXELS).rgb
              for i, d in enumerate(inputs)]
    forward: dict[str, list[float]] = {name: [] for name in backends}
    predict: dict[str, list[float]] = {name: [] for name in backends}
    per_round: dict[str, dict[str, list[float]]] = {
        name: {"forward_ms": [], "predict_ms": []} for name in backends}
    gflop: dict[str, float] = {}
    for backend in backends.values():
        backend.predict(images[0])  # load and warm up
    for _ in range(rounds):
        for name, backend in backends.items():
            found = backend.forward_profile(name, passes)
            if found is None:
                raise InputError(f"{backend.name} cannot time its forward pass alone")
            times, flops = found
            gflop[name] = flops / 1e9
            forward[name] += times
            start_ms = []
            for rgb in images:
                start = time.perf_counter()
                backend.predict(rgb)
                start_ms.append((time.perf_counter() - start) * 1e3)
            predict[name] += start_ms
            per_round[name]["forward_ms"].append(statistics.median(times))
            per_round[name]["predict_ms"].append(statistics.median(start_ms))
    return [ForwardResult(b.name, b.device or "?", name, size,
                          statistics.median(forward[name]), statistics.median(predict[name]),
                          gflop[name], per_round[name])
            for name, b in backends.items()]
