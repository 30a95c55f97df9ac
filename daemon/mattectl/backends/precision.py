"""The number format a PyTorch model runs in: float32, bfloat16 (CPU) or float16 (CUDA).

The model's weights are converted to the chosen format (some float32 stages kept, see
:func:`mattectl.backends.u2net_arch.lowered`). ``auto`` takes float16 on CUDA
(``models.u2net.half``); on a CPU it takes bfloat16 only where a calibration shows it faster
than float32: CPUs with AMX or AVX-512 BF16 run it about twice as fast, others emulate it and
are slower. The calibration (a few forward passes of each,
alternating) runs once per machine, CPU model, PyTorch version, model and thread count, and its
verdict is remembered in a small JSON file (``$MATTECTL_CACHE_DIR``, else
``~/.cache/mattectl``), so that every process of the machine (the daemon's model process,
``mattectl process``, ``eval``) runs the same format and writes the same cutouts.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import torch

from mattectl.config import U2NetConfig
from mattectl.errors import BackendError
from mattectl.fsutil import write_file

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ENV_CACHE_DIR = "MATTECTL_CACHE_DIR"
CALIBRATION_PASSES = 3  # per format, after one warm-up pass of each
MARGIN = 0.9  # bfloat16 must take under this share of float32's time to be chosen

ForwardTimer = Callable[[str, int], list[float]]  # (format, passes) -> ms of each pass


def choose(options: U2NetConfig, device: torch.device, timer: ForwardTimer, *,
           key: str) -> str:
    """The format to run in on ``device``, by ``options.precision``; ``timer`` times forward
    passes for the calibration, ``key`` names the model and its settings in the remembered
    verdicts. Raises BackendError for float16 on a CPU."""
    wanted = options.precision
    if device.type == "cuda":
        if wanted == "auto":
            return "float16" if options.half else "float32"
        if wanted == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise BackendError(f"{device} has no bfloat16: set models.u2net.precision to auto, "
                               "float16 or float32")
        return wanted
    if wanted == "float16":
        raise BackendError("float16 runs on CUDA only, and this model runs on the CPU: set "
                           "models.u2net.precision to auto, bfloat16 or float32")
    if wanted != "auto":
        return wanted
    return _calibrated(timer, f"{_cpu_name()}|torch {torch.__version__}|{key}")


def _calibrated(timer: ForwardTimer, key: str) -> str:
    verdicts = _read_verdicts()
    if key in verdicts and verdicts[key] in ("float32", "bfloat16"):
        return verdicts[key]
    verdict, figures = calibrate(timer)
    logger.info("precision: %s on this CPU (forward pass, median ms: %s)", verdict,
                ", ".join(f"{name} {ms:.0f}" for name, ms in figures.items()))
    verdicts[key] = verdict
    _write_verdicts(verdicts)
    return verdict


def calibrate(timer: ForwardTimer) -> tuple[str, dict[str, float]]:
    """bfloat16 or float32, whichever the timed passes show faster (bfloat16 by ``MARGIN``),
    and the median milliseconds of each."""
    names = ("float32", "bfloat16")
    for name in names:
        timer(name, 1)  # warm-up: first-call allocations and kernel choice are not the speed
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(CALIBRATION_PASSES):  # alternating, so that other load hits both alike
        for name in names:
            times[name] += timer(name, 1)
    medians = {name: statistics.median(values) for name, values in times.items()}
    faster = medians["bfloat16"] < MARGIN * medians["float32"]
    return ("bfloat16" if faster else "float32"), medians


def cache_path() -> Path:
    root = os.environ.get(ENV_CACHE_DIR)
    if root:
        return Path(root) / "precision.json"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mattectl" / "precision.json"


def _read_verdicts() -> dict[str, str]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verdicts(verdicts: dict[str, str]) -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, json.dumps(verdicts, indent=1, sort_keys=True).encode(), "overwrite")
    except OSError as exc:  # a read-only home: calibrate again next time
        logger.warning("cannot remember the precision verdict in %s: %s", path, exc)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
