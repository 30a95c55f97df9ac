"""The models mattectl knows: which backend runs each, its files, where they come from and where
they are found.

Pure data and file lookups: importing this module imports no framework, and every lookup is a
few ``stat`` calls (no network, no hashing), so it can run on every scheduler tick.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mattectl.backends import modelscope_cache


@dataclass(frozen=True)
class WeightFile:
    """One file of a model, with what its publisher says about it (None: nothing published)."""

    name: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    urls: tuple[str, ...] = ()

    @property
    def published_checksum(self) -> bool:
        return self.md5 is not None or self.sha256 is not None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str  # key in mattectl.backends.BACKENDS
    variant: str  # what the backend builds (architecture)
    description: str
    filename: str  # the canonical (first) file inside <models_dir>/<name>/
    framework: str  # importable module the backend needs
    suffixes: tuple[str, ...] = (".pth",)  # weight files imported by hand keep their own name
    # The side of the square the model sees; None when it works at the photo's own size.
    # An alpha enlarged from it is refined against the photo (mattectl.imageio.edges).
    input_size: int | None = None
    # Every file of the model, with what its publisher says; default: ``filename`` alone.
    files: tuple[WeightFile, ...] = ()
    # False: the weights are one file; True: a folder holding every file (BSHM).
    folder: bool = False
    modelscope_ids: tuple[str, ...] = ()  # ModelScope publishes the model under these ids

    def __post_init__(self) -> None:
        if not self.files:
            object.__setattr__(self, "files", (WeightFile(self.filename),))


def _google_drive(file_id: str) -> tuple[str, ...]:
    # The U-2-Net README links these Drive files. The usercontent address skips the page Drive
    # shows before large files; the older uc address still serves small ones.
    return (f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t",
            f"https://drive.google.com/uc?export=download&id={file_id}")


# The U-2-Net authors publish no checksums. The md5 sums below are the ones rembg 1.0's
# u2net/detect.py (load_model) checked these very Drive files against before rembg moved to ONNX.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("u2netp", "u2net", "u2netp", "U²-NetP, 1.1 M parameters: fast, small subjects",
                  "u2netp.pth", "torch", input_size=320,
                  files=(WeightFile("u2netp.pth", md5="e4f636406ca4e2af789941e7f139ee2e",
                                    urls=_google_drive("1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy")),)),
        ModelSpec("u2net", "u2net", "u2net", "U²-Net, 44 M parameters: general salient objects",
                  "u2net.pth", "torch", input_size=320,
                  files=(WeightFile("u2net.pth", md5="347c3d51b01528e5c6c071e3cff1cb55",
                                    urls=_google_drive("1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ")),)),
        ModelSpec("u2net_human_seg", "u2net", "u2net", "U²-Net trained on people",
                  "u2net_human_seg.pth", "torch", input_size=320,
                  files=(WeightFile("u2net_human_seg.pth", md5="09fb4e49b7f785c9f855baf94916840a",
                                    urls=_google_drive("1-Yg0cxgrNhHP-016FPdp902BR-kSsA4P")),)),
        # ModelScope lists a sha256 per file and snapshot_download checks it while downloading;
        # nothing is published elsewhere, so mattectl records the checksums at pull or import.
        ModelSpec("bshm", "bshm", "bshm", "BSHM portrait matting (ModelScope, TensorFlow): "
                  "quality, hair", "tf_graph.pb", "tensorflow", (".pb",),
                  files=(WeightFile("tf_graph.pb"), WeightFile("configuration.json")),
                  folder=True,
                  modelscope_ids=("damo/cv_unet_image-matting", "iic/cv_unet_image-matting")),
    )
}


@dataclass(frozen=True)
class Availability:
    ok: bool
    weights: Path | None  # the weight file, or the model folder for folder models
    reason: str  # empty when ok


def _complete(spec: ModelSpec, folder: Path) -> bool:
    return all((folder / f.name).is_file() for f in spec.files)


def _find_file(spec: ModelSpec, folder: Path) -> Path | None:
    canonical = folder / spec.filename
    if canonical.is_file():
        return canonical
    if folder.is_dir():
        candidates = sorted(
            p for p in folder.iterdir() if p.suffix in spec.suffixes and p.is_file())
        if candidates:
            return candidates[0]
    return None


def _find_folder(spec: ModelSpec, models_dir: Path, explicit: Path | None,
                 modelscope_roots: Sequence[Path]) -> Path | None:
    if explicit is not None:
        folder = explicit.parent if explicit.is_file() else explicit
        return folder if _complete(spec, folder) else None
    if _complete(spec, models_dir / spec.name):
        return models_dir / spec.name
    return modelscope_cache.find_snapshot(modelscope_roots, spec.modelscope_ids,
                                          (f.name for f in spec.files))


def find_weights(spec: ModelSpec, models_dir: Path, explicit: Path | None = None,
                 modelscope_roots: Sequence[Path] = ()) -> Path | None:
    """Where the model's weights are, or None.

    One-file models: the configured file, else ``<models_dir>/<name>/<filename>``, else the first
    weight file in that folder. Folder models: the configured folder (or the folder of a
    configured file), else ``<models_dir>/<name>/``, else a ModelScope cache under one of
    ``modelscope_roots``; a folder counts only when it holds every file of the model.
    """
    if spec.folder:
        return _find_folder(spec, models_dir, explicit, modelscope_roots)
    if explicit is not None:
        return explicit if explicit.is_file() else None
    return _find_file(spec, models_dir / spec.name)


def _missing_reason(spec: ModelSpec, models_dir: Path, explicit: Path | None,
                    modelscope_roots: Sequence[Path]) -> str:
    if explicit is not None:
        where = f"{explicit}"
    elif spec.folder:
        where = ", ".join([str(models_dir / spec.name)] + [
            f"the ModelScope cache {root}" for root in modelscope_roots])
    else:
        where = str(models_dir / spec.name)
    what = " and ".join(f.name for f in spec.files) if spec.folder else "weights"
    return (f"model '{spec.name}' is not installed: no {what} at {where}. Run "
            f"`mattectl models pull {spec.name}`, or `mattectl models import {spec.name} PATH` "
            "for files copied in by hand.")


def availability(spec: ModelSpec, models_dir: Path, explicit: Path | None = None,
                 modelscope_roots: Sequence[Path] = ()) -> Availability:
    """Whether a model can run here, and if not, a sentence saying how to fix it."""
    weights = find_weights(spec, models_dir, explicit, modelscope_roots)
    if weights is None:
        return Availability(False, None,
                            _missing_reason(spec, models_dir, explicit, modelscope_roots))
    if importlib.util.find_spec(spec.framework) is None:
        return Availability(False, weights, (
            f"model '{spec.name}' needs the Python package '{spec.framework}', which is not "
            "installed in this environment."
        ))
    return Availability(True, weights, "")
