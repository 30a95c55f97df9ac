#!/usr/bin/env python3
"""Latency of both backends at 1080p, run inside this process and in a child process.

    .venv/bin/python scripts/bench_backends.py [--models DIR] [--bshm DIR] [--reps N]
                                               [--device auto|cpu|cuda] [--json FILE]

U²-Net (u2netp from --models, half precision on CUDA) and BSHM (--bshm, a ModelScope model
folder; by default the small test graph from tests/bshm_graph.py, built in a temporary folder).
Each backend is loaded twice, ``inline`` (in this process) and ``process`` (the default
isolation, a child process). Repetitions alternate the two so that noise on a shared machine
hits both; the medians, their ratio and the load times are printed.

A third row runs BSHM with ``max_side = 64``: the model's work shrinks to nothing, so the
difference between the two modes is the cost of the hop itself (photo and alpha through the
socket). ``--abort-demo`` also shows what a TensorFlow abort does to each: inline, the process
running the model dies (SIGABRT); isolated, the call fails and the caller lives on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "daemon"), str(ROOT)]

from tests import bshm_graph  # noqa: E402

from mattectl import config  # noqa: E402
from mattectl.backends import BACKENDS, backend_class  # noqa: E402
from mattectl.backends.base import MattingBackend  # noqa: E402
from mattectl.backends.catalog import MODELS, find_weights  # noqa: E402
from mattectl.backends.isolated import IsolatedBackend  # noqa: E402
from mattectl.errors import BackendError  # noqa: E402

WIDTH, HEIGHT = 1920, 1080


def backends(name: str, weights: Path, device: str, **bshm: int) -> dict[str, MattingBackend]:
    options = config.parse({"models": {"device": device, "bshm": bshm}}).models
    spec = MODELS[name]
    return {"inline": backend_class(spec.backend)(spec, weights, options),
            "process": IsolatedBackend(spec, weights, options, BACKENDS[spec.backend])}


def measure(name: str, weights: Path, device: str, reps: int, **bshm: int) -> dict:
    pair = backends(name, weights, device, **bshm)
    loads = {}
    for mode, backend in pair.items():
        start = time.perf_counter()
        device_used = backend.load()
        loads[mode] = time.perf_counter() - start
    rgb = bshm_graph.photo(WIDTH, HEIGHT, seed=7)
    for backend in pair.values():
        backend.predict(rgb)  # warm-up: cuDNN autotuning, TensorFlow's first-run optimisation
    times: dict[str, list[float]] = {mode: [] for mode in pair}
    for _ in range(reps):
        for mode, backend in pair.items():
            start = time.perf_counter()
            backend.predict(rgb)
            times[mode].append(time.perf_counter() - start)
    for backend in pair.values():
        backend.unload()
    med = {mode: statistics.median(ts) for mode, ts in times.items()}
    return {"model": name + (f" {bshm}" if bshm else ""), "device": device_used, "reps": reps,
            "median_ms": {m: round(v * 1000, 1) for m, v in med.items()},
            "min_ms": {m: round(min(ts) * 1000, 1) for m, ts in times.items()},
            "process_over_inline": round(med["process"] / med["inline"], 3),
            "process_minus_inline_ms": round((med["process"] - med["inline"]) * 1000, 1),
            "load_s": {m: round(v, 2) for m, v in loads.items()}}


ABORT_INLINE = """
import sys
from pathlib import Path
sys.path[:0] = sys.argv[2:4]
from mattectl import config
from mattectl.backends.bshm import BshmBackend
from mattectl.backends.catalog import MODELS
from tests import bshm_graph
backend = BshmBackend(MODELS["bshm"], Path(sys.argv[1]), config.parse({}).models)
backend.predict(bshm_graph.photo(64, 48, corner=bshm_graph.RED))
print("survived")
"""


def abort_demo(folder: Path) -> dict:
    inline = subprocess.run([sys.executable, "-c", ABORT_INLINE, str(folder),
                             str(ROOT / "daemon"), str(ROOT)], capture_output=True, text=True)
    isolated = backends("bshm", folder, "cpu")["process"]
    try:
        isolated.predict(bshm_graph.photo(64, 48, corner=bshm_graph.RED))
        caught = "no error"
    except BackendError as exc:
        caught = str(exc)
    alive_after = isolated.predict(bshm_graph.photo(64, 48)).shape
    isolated.unload()
    return {"inline_exit_code": inline.returncode, "isolated_error": caught,
            "isolated_next_call": list(alive_after)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT.parent / "shared" / "models")
    parser.add_argument("--bshm", type=Path, help="BSHM model folder [default: the test graph]")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--abort-demo", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bshm = args.bshm or bshm_graph.write_model_dir(Path(tmp) / "bshm")
        results = []
        u2netp = find_weights(MODELS["u2netp"], args.models)
        if u2netp is None:
            print(f"no u2netp weights under {args.models}: U²-Net skipped", file=sys.stderr)
        else:
            results.append(measure("u2netp", u2netp, args.device, args.reps))
        results.append(measure("bshm", bshm, args.device, args.reps))
        # The hop alone: BSHM fed a 64-pixel image, so that the difference is the 1080p photo
        # and alpha crossing the socket (both modes resize the same way).
        results.append(measure("bshm", bshm, args.device, args.reps, max_side=64))
        report = {"input": f"{WIDTH}x{HEIGHT}", "results": results}
        if args.abort_demo:
            report["abort"] = abort_demo(bshm_graph.write_model_dir(Path(tmp) / "abort", "abort"))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
