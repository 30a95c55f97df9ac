#!/usr/bin/env python3
"""Drop-to-cutout throughput of the daemon against a bare loop over the model, in one run.

    .venv/bin/python scripts/bench_daemon.py [--photos DIR] [--models DIR] [--rounds N]

For each round: (1) the bare loop decodes every photo up front, then only calls
``backend.predict`` on each (the model alone); (2) a real ``mattectl run`` is started on fresh
folders, all photos are copied into its drop folder at once, and the time from the drop to the
last cutout is measured. Per-stage times come from the job log. Rounds alternate the two so that
machine noise hits both; medians and the ratio are printed (and written as JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from mattectl.backends.cache import ModelCache  # noqa: E402
from mattectl.config import ModelsConfig  # noqa: E402
from mattectl.jobs.status import JobStatus  # noqa: E402
from mattectl.store.repository import JobRepository  # noqa: E402

CONFIG = """
[daemon]
state_dir = "state"
heartbeat_s = 1.0
allow_root = {allow_root}
workers = {workers}
[models]
dir = "{models}"
[[watch]]
name = "bench"
input = "in"
output = "out"
stability_s = {stability}
"""


def bare_loop(photos: list[Path], models: Path) -> tuple[float, float]:
    """Seconds for the model alone over every photo (decoding done beforehand, not timed), and
    the CPU seconds its inference child used meanwhile."""
    cache = ModelCache(ModelsConfig(), models)
    backend = cache.get("u2netp")
    backend.load()
    images = [np.asarray(Image.open(p).convert("RGB")) for p in photos]
    backend.predict(images[0])  # warm-up, as the daemon's first job pays for it too
    child = getattr(backend, "pid", None)  # None when the model runs inline
    cpu_before = cpu_seconds(child) if child else math.nan
    start = time.perf_counter()
    for rgb in images:
        backend.predict(rgb)
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(child) if child else math.nan) - cpu_before
    cache.unload_all()
    return elapsed, cpu


def daemon_run(photos: list[Path], models: Path, stability: float, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mattectl-bench-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        config = root / "mattectl.toml"
        config.write_text(CONFIG.format(models=models, stability=stability, workers=workers,
                                         allow_root=str(os.geteuid() == 0).lower()))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon")}
        log = (root / "daemon.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "mattectl", "run", "-c", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            db = root / "state" / "jobs.sqlite3"
            _wait(lambda: db.exists(), 60)
            # Warm the daemon like the bare loop: one photo through it before timing (a mirrored
            # copy: the same content would be recognised as a duplicate later).
            Image.open(photos[0]).convert("RGB").transpose(
                Image.Transpose.FLIP_LEFT_RIGHT).save(root / "in" / "warmup.jpg")
            _wait(lambda: (root / "out" / "warmup.png").exists(), 120)
            start = time.time()
            daemon_before = cpu_seconds(proc.pid)
            children_before = sum(cpu_seconds(c) for c in _children(proc.pid))
            for i, photo in enumerate(photos):
                shutil.copyfile(photo, root / "in" / f"{i:02d}-{photo.name}")
            repo = JobRepository.open(db, writer=False)
            _wait(lambda: _finished(repo) >= len(photos) + 1, 600)
            daemon_cpu = cpu_seconds(proc.pid) - daemon_before
            children = sum(cpu_seconds(c) for c in _children(proc.pid)) - children_before
            jobs = [j for j in repo.list(limit=1000) if j.rel_path != "warmup.jpg"]
            repo.close()
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
    assert all(j.status == JobStatus.DONE for j in jobs), [j.error for j in jobs]
    last = max(j.finished_at.timestamp() for j in jobs)
    first = min(j.finished_at.timestamp() for j in jobs)
    return {
        "drop_to_last_s": last - start,
        "first_to_last_s": last - first,
        "daemon_cpu_s": daemon_cpu,  # the daemon's own process
        "inference_cpu_s": children,  # its inference child
        "stages_ms": {stage: statistics.median(getattr(j, f"{stage}_ms") for j in jobs)
                      for stage in ("decode", "inference", "encode", "db", "total")},
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
        out += [int(c) for c in task.read_text().split()]
    return out


def _finished(repo: JobRepository) -> int:
    counts = repo.counts().get("bench", {})
    return counts.get("done", 0) + counts.get("failed", 0)


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path,
                        default=ROOT.parent / "shared/data/u2net_official/test_human_images")
    # absolute: the daemon reads it from a config in a temporary folder
    parser.add_argument("--models", type=lambda p: Path(p).resolve(), default=Path(
        os.environ.get("MATTECTL_MODELS_DIR", ROOT.parent / "shared/models")).resolve())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stability", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2, help="daemon.workers")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = sorted(args.photos.iterdir())
    n = len(photos)
    rounds = []
    for r in range(args.rounds):
        bare, bare_cpu = bare_loop(photos, args.models)
        daemon = daemon_run(photos, args.models, args.stability, args.workers)
        rounds.append({"bare_s": bare, "bare_cpu_s": bare_cpu, **daemon})
        print(f"round {r + 1}: bare {n / bare:.2f} img/s, daemon drop-to-last "
              f"{n / daemon['drop_to_last_s']:.2f} img/s, stages {daemon['stages_ms']}, CPU ms "
              f"per photo: bare model {bare_cpu / n * 1000:.0f}, daemon "
              f"{daemon['daemon_cpu_s'] / n * 1000:.0f} + its model "
              f"{daemon['inference_cpu_s'] / n * 1000:.0f}",
              flush=True)
    med = {key: statistics.median(r[key] for r in rounds)
           for key in ("bare_s", "drop_to_last_s", "first_to_last_s")}
    stages = {stage: statistics.median(r["stages_ms"][stage] for r in rounds)
              for stage in rounds[0]["stages_ms"]}
    cpu = {key: statistics.median(r[key] for r in rounds) / n * 1000
           for key in ("daemon_cpu_s", "inference_cpu_s", "bare_cpu_s")}
    summary = {
        "photos": n, "rounds": args.rounds, "workers": args.workers,
        "bare_img_per_s": n / med["bare_s"],
        "daemon_img_per_s": n / med["drop_to_last_s"],
        "daemon_steady_img_per_s": (n - 1) / med["first_to_last_s"],
        "ratio_drop_to_last": med["bare_s"] / med["drop_to_last_s"],
        "ratio_steady": (med["bare_s"] * (n - 1) / n) / med["first_to_last_s"],
        "median_stage_ms": stages,
        "cpu_ms_per_photo": cpu,  # medians: the daemon process, its inference child, bare loop
        "rounds_detail": rounds,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds_detail"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
