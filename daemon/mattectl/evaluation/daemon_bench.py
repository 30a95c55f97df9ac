"""Drop-to-cutout throughput of the real daemon against a bare loop over the model, in one run.

Each round: (1) the bare loop decodes every photo up front, then only calls ``predict`` on each
(the model alone, its pre- and post-processing included, as configured: in its own process by
default), twice: with the model's threads as the daemon runs them (sleeping when they wait:
the reference ratio) and spinning (the model alone at its fastest; see
``mattectl.backends.spinning_threads``); (2) a real ``mattectl run`` is started on fresh folders
with the same models settings,
warmed with one photo, then every photo is copied into its drop folder at once and the time
from the drop to the last cutout is measured. Rounds alternate the two so that machine noise
hits both; each round's ratio compares runs made seconds apart, and the median of the rounds'
ratios is the figure reported. Per-stage times come from the daemon's own job log.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomli_w
from PIL import Image

from mattectl.backends import spinning_threads
from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig
from mattectl.errors import MattectlError
from mattectl.evaluation.dataset import load_rgb
from mattectl.store.repository import JobRepository
from mattectl.store.status import JobStatus

logger = logging.getLogger(__name__)

STAGES = ("decode", "inference", "encode", "db", "total")


@dataclass(frozen=True)
class DaemonBenchOptions:
    model: str = "u2netp"
    rounds: int = 3
    workers: int = 3  # daemon.workers
    stability_s: float = 0.5
    clean_edges: bool = True
    edges: str | None = None  # the folder's `edges` mode; None: the folder default


@dataclass(frozen=True)
class Round:
    bare_s: float  # the model alone over every photo, as the daemon runs it
    bare_cpu_s: float  # CPU of the model's process meanwhile (NaN when inline)
    bare_spinning_s: float  # the same, its threads spinning (NaN when inline: not measured)
    drop_to_last_s: float  # the daemon, from the drop to the last cutout
    first_to_last_s: float
    daemon_cpu_s: float  # the daemon's own process
    inference_cpu_s: float  # its inference child
    stages_ms: dict[str, float]  # medians from the job log

    @property
    def ratio(self) -> float:
        return self.bare_s / self.drop_to_last_s

    @property
    def ratio_spinning(self) -> float:
        return self.bare_spinning_s / self.drop_to_last_s


@dataclass(frozen=True)
class DaemonBenchResult:
    photos: int
    options: DaemonBenchOptions
    rounds: list[Round]

    @property
    def ratio(self) -> float:
        """Median over the rounds of (bare loop time / daemon drop-to-last time)."""
        return statistics.median(r.ratio for r in self.rounds)

    @property
    def ratio_spinning(self) -> float:
        """The same against the bare loop whose threads spin (the model alone at its fastest)."""
        return statistics.median(r.ratio_spinning for r in self.rounds)

    def median(self, key: str) -> float:
        return statistics.median(getattr(r, key) for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: what was not measured (NaN here) is null."""
        n = self.photos
        return _nulls({
            "photos": n, "options": asdict(self.options),
            "ratio": self.ratio, "ratio_per_round": [r.ratio for r in self.rounds],
            "ratio_spinning": self.ratio_spinning,
            "ratio_spinning_per_round": [r.ratio_spinning for r in self.rounds],
            "bare_img_per_s": n / self.median("bare_s"),
            "bare_spinning_img_per_s": n / self.median("bare_spinning_s"),
            "daemon_img_per_s": n / self.median("drop_to_last_s"),
            "cpu_ms_per_photo": {key: self.median(key) / n * 1000 for key in
                                 ("bare_cpu_s", "daemon_cpu_s", "inference_cpu_s")},
            "median_stage_ms": {s: statistics.median(r.stages_ms[s] for r in self.rounds)
                                for s in STAGES},
            "rounds": [{**asdict(r), "ratio": r.ratio, "ratio_spinning": r.ratio_spinning}
                       for r in self.rounds],
        })


def _nulls(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return value


def run(photos: Sequence[Path], models: ModelsConfig, models_dir: Path,
        options: DaemonBenchOptions,
        progress: Callable[[int, Round], None] = lambda i, r: None) -> DaemonBenchResult:
    if len(photos) < 2:
        raise MattectlError("the daemon benchmark needs at least two photos")
    rounds = []
    for i in range(options.rounds):
        bare_s, bare_cpu = bare_loop(photos, models, models_dir, options.model)
        spinning = math.nan
        if models.isolation == "process":
            with spinning_threads():
                spinning, _ = bare_loop(photos, models, models_dir, options.model)
        rounds.append(Round(bare_s, bare_cpu, spinning,
                            **daemon_run(photos, models, models_dir, options)))
        progress(i, rounds[-1])
    return DaemonBenchResult(len(photos), options, rounds)


def bare_loop(photos: Sequence[Path], models: ModelsConfig, models_dir: Path,
              model: str) -> tuple[float, float]:
    """Seconds for the model alone over every photo (decoded beforehand, not timed), and the
    CPU seconds its inference process used meanwhile (NaN when the model runs inline)."""
    cache = ModelCache(models, models_dir)
    try:
        backend = cache.get(model)
        backend.load()
        images = [load_rgb(p) for p in photos]
        backend.predict(images[0])  # warm-up, as the daemon's first job pays for it too
        child = getattr(backend, "pid", None)
        cpu_before = cpu_seconds(child) if child else math.nan
        start = time.perf_counter()
        for rgb in images:
            backend.predict(rgb)
        elapsed = time.perf_counter() - start
        cpu = (cpu_seconds(child) if child else math.nan) - cpu_before
    finally:
        cache.unload_all()
    return elapsed, cpu


def _config(root: Path, models: ModelsConfig, models_dir: Path,
            options: DaemonBenchOptions) -> Path:
    """The benchmark daemon's config: its own folders, and every ``[models]`` setting the bare
    loop runs with (number format, resampling, threads, isolation, weights' paths...), so that
    both measure the same model."""
    watch: dict[str, Any] = {"name": "bench", "input": "in", "output": "out",
                             "model": options.model, "stability_s": options.stability_s,
                             "clean_edges": options.clean_edges}
    if options.edges:
        watch["edges"] = options.edges
    document = {
        "daemon": {"state_dir": "state", "heartbeat_s": 1.0, "workers": options.workers,
                   "allow_root": os.geteuid() == 0},
        # the measured model alone is preloaded (not the config's others: the bare loop has
        # none of them)
        "models": {**models.model_dump(mode="json", exclude_defaults=True),
                   "dir": str(models_dir),
                   "preload": [m for m in models.preload if m == options.model]},
        "watch": [watch],
    }
    path = root / "mattectl.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def daemon_run(photos: Sequence[Path], models: ModelsConfig, models_dir: Path,
               options: DaemonBenchOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mattectl-bench-daemon-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        config = _config(root, models, models_dir.resolve(), options)
        with (root / "daemon.log").open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "mattectl", "run", "-c", str(config)],
                                    stdout=log, stderr=subprocess.STDOUT)
            try:
                return _measure(root, proc, photos)
            except MattectlError as exc:
                raise MattectlError(f"{exc}; the daemon's log:\n"
                                    f"{(root / 'daemon.log').read_text()[-3000:]}") from None
            finally:
                proc.terminate()
                proc.wait(60)


def _measure(root: Path, proc: subprocess.Popen, photos: Sequence[Path]) -> dict[str, Any]:
    db = root / "state" / "jobs.sqlite3"
    _wait(lambda: db.exists(), 120, proc, "the daemon to start")
    # Warm the daemon like the bare loop: one photo through it before timing (a renamed,
    # re-encoded copy: the same content would be recognised as a duplicate later).
    Image.open(photos[0]).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        root / "in" / "warmup.png")
    _wait(lambda: (root / "out" / "warmup.png").exists(), 300, proc, "the warm-up cutout")
    start = time.time()
    daemon_before = cpu_seconds(proc.pid)
    children_before = sum(cpu_seconds(c) for c in _children(proc.pid))
    for i, photo in enumerate(photos):
        shutil.copyfile(photo, root / "in" / f"{i:03d}-{photo.name}")
    repo = JobRepository.open(db, writer=False)
    try:
        _wait(lambda: _finished(repo) >= len(photos) + 1, 1800, proc, "every cutout")
        daemon_cpu = cpu_seconds(proc.pid) - daemon_before
        children = sum(cpu_seconds(c) for c in _children(proc.pid)) - children_before
        jobs = [j for j in repo.list(limit=100_000) if j.rel_path != "warmup.png"]
    finally:
        repo.close()
    failed = [f"{j.rel_path}: {j.error}" for j in jobs if j.status != JobStatus.DONE]
    if failed:
        raise MattectlError("the daemon failed photos: " + "; ".join(failed[:5]))
    finished = [j.finished_at.timestamp() for j in jobs if j.finished_at is not None]
    return {
        "drop_to_last_s": max(finished) - start,
        "first_to_last_s": max(finished) - min(finished),
        "daemon_cpu_s": daemon_cpu,
        "inference_cpu_s": children,
        "stages_ms": {s: statistics.median(getattr(j, f"{s}_ms") or 0.0 for j in jobs)
                      for s in STAGES},
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far, from /proc (Linux); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return out


def _finished(repo: JobRepository) -> int:
    counts = repo.counts().get("bench", {})
    return counts.get("done", 0) + counts.get("failed", 0)


def _wait(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen,
          what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise MattectlError(f"the daemon exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise MattectlError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
