"""Whether this machine has an NVIDIA GPU, asked of the driver's files, not of a framework.

The answer must not depend on torch or tensorflow: a CPU-only build of either sees no GPU on a
machine that has one, and that is exactly the fall-back mattectl has to report. Reading the
driver's files also initialises nothing (TensorFlow maps GPU memory as soon as it is asked).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

PROC_GPUS = Path("/proc/driver/nvidia/gpus")
DEV = Path("/dev")


def _model_name(information: Path) -> str:
    try:
        for line in information.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                return value.strip()
    except OSError:
        pass
    return "NVIDIA GPU"


def hidden_on_purpose() -> bool:
    """``CUDA_VISIBLE_DEVICES`` set to nothing (or -1) hides every GPU deliberately."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.strip() in ("", "-1")


def nvidia_gpus(proc_gpus: Path | None = None, dev: Path | None = None) -> list[str]:
    """The NVIDIA GPUs the driver reports (their model names); empty when there are none or
    they are hidden on purpose."""
    if hidden_on_purpose():
        return []
    proc_gpus = proc_gpus or PROC_GPUS
    dev = dev or DEV
    if proc_gpus.is_dir():
        found = [_model_name(d / "information") for d in sorted(proc_gpus.iterdir())]
        if found:
            return found
    # Containers often get the device nodes without /proc/driver/nvidia.
    return [f"NVIDIA GPU ({p})" for p in sorted(dev.glob("nvidia[0-9]*"))]


def cpu_fallback_warning(model: str, device: str, requested: str, gpus: list[str]) -> str | None:
    """A sentence when a model that could use a GPU runs on the CPU of a machine that has one."""
    if device != "cpu" or requested == "cpu" or not gpus:
        return None
    return (f"model {model} runs on the CPU although this machine has {', '.join(gpus)}: the "
            "framework cannot use it (a CPU-only build of torch or tensorflow, or a driver "
            "mismatch). Inference is many times slower.")
