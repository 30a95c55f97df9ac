"""The models mattectl knows: which backend runs each, and where its weights live.

Pure data and file lookups: importing this module imports no framework.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str  # key in mattectl.backends.BACKENDS
    variant: str  # what the backend builds (architecture)
    description: str
    filename: str  # canonical weight file name inside <models_dir>/<name>/
    framework: str  # importable module the backend needs
    suffixes: tuple[str, ...] = (".pth",)
    # The side of the square the model sees; None when it works at the photo's own size.
    # An alpha enlarged from it is refined against the photo (mattectl.imageio.edges).
    input_size: int | None = None


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("u2netp", "u2net", "u2netp", "U²-NetP, 1.1 M parameters: fast, small subjects",
                  "u2netp.pth", "torch", input_size=320),
        ModelSpec("u2net", "u2net", "u2net", "U²-Net, 44 M parameters: general salient objects",
                  "u2net.pth", "torch", input_size=320),
        ModelSpec("u2net_human_seg", "u2net", "u2net", "U²-Net trained on people",
                  "u2net_human_seg.pth", "torch", input_size=320),
    )
}


@dataclass(frozen=True)
class Availability:
    ok: bool
    weights: Path | None
    reason: str  # empty when ok


def find_weights(spec: ModelSpec, models_dir: Path, explicit: Path | None = None) -> Path | None:
    """The configured file, else ``<models_dir>/<name>/<filename>``, else the first weight file
    in that folder (weights imported by hand keep their own name)."""
    if explicit is not None:
        return explicit if explicit.is_file() else None
    folder = models_dir / spec.name
    canonical = folder / spec.filename
    if canonical.is_file():
        return canonical
    if folder.is_dir():
        candidates = sorted(
            p for p in folder.iterdir() if p.suffix in spec.suffixes and p.is_file())
        if candidates:
            return candidates[0]
    return None


def availability(spec: ModelSpec, models_dir: Path, explicit: Path | None = None) -> Availability:
    """Whether a model can run here, and if not, a sentence saying how to fix it."""
    weights = find_weights(spec, models_dir, explicit)
    if weights is None:
        where = explicit if explicit is not None else models_dir / spec.name
        return Availability(False, None, (
            f"model '{spec.name}' is not installed: no weights at {where}. Run "
            f"`mattectl models pull {spec.name}`, or `mattectl models import {spec.name} FILE` "
            "for a file copied in by hand."
        ))
    if importlib.util.find_spec(spec.framework) is None:
        return Availability(False, weights, (
            f"model '{spec.name}' needs the Python package '{spec.framework}', which is not "
            "installed in this environment."
        ))
    return Availability(True, weights, "")
