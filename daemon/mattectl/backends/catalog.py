"""The models mattectl knows: which backend runs each, its files, where they come from and where
they are found.

Pure data and file lookups: importing this module imports no framework, and every lookup is a
few ``stat`` calls (no network, no hashing), so it can run on every scheduler tick.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mattectl.backends import modelscope_cache


@dataclass(frozen=True)
class Source:
    """One place a file can be downloaded from: ``urls`` is one address, or the addresses of the
    file's parts in order (a mirror that splits a large file)."""

    label: str  # who publishes it, for people: "GitHub release OPHoperHPO/... 3.2"
    urls: tuple[str, ...]


@dataclass(frozen=True)
class WeightFile:
    """One file of a model, with what its publisher says about it (None: nothing published).
    ``sources`` are tried in order: release assets and well-known mirrors, Google Drive last."""

    name: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    sources: tuple[Source, ...] = ()

    @property
    def published_checksum(self) -> bool:
        return self.md5 is not None or self.sha256 is not None


class WeightSource(StrEnum):
    """Where the weights in use were found."""

    PATH = "path"  # models.paths.<name> in the config
    MODELS_DIR = "models dir"  # <models dir>/<name>/, put there by pull or import
    MODELSCOPE = "modelscope cache"
    PACKAGE = "package"  # shipped inside mattectl (the embedded default)


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
    # Weights shipped inside the mattectl package (``name`` relative to it), used when none are
    # configured or installed; checked against ``size`` and ``sha256`` before every load.
    packaged: WeightFile | None = None

    def __post_init__(self) -> None:
        if not self.files:
            object.__setattr__(self, "files", (WeightFile(self.filename),))


def _release(repo: str, tag: str, name: str) -> Source:
    return Source(f"GitHub release {repo} {tag}",
                  (f"https://github.com/{repo}/releases/download/{tag}/{name}",))


def _mirror(repo: str, *paths: str) -> Source:
    parts = f", in {len(paths)} parts" if len(paths) > 1 else ""
    return Source(f"GitHub mirror {repo}{parts}",
                  tuple(f"https://github.com/{repo}/raw/main/{path}" for path in paths))


def _google_drive(file_id: str, linked_by: str) -> Source:
    # Drive answers large files with a confirmation page; modelstore.download follows it.
    return Source(f"Google Drive, {linked_by}",
                  (f"https://drive.google.com/uc?export=download&id={file_id}",))


# Where the U²-Net checkpoints can be downloaded, in the order they are tried. The authors link
# Google Drive from the U-2-Net README; OPHoperHPO/image-background-remove-tool (now CarveKit)
# publishes u2net.pth and u2netp.pth as assets of its release 3.2; nadermx/backgroundremover
# keeps them in its repository (u2net and u2net_human_seg split into four parts each). rembg's
# release assets are ONNX exports, which the PyTorch backend cannot load.
_OPHOPERHPO = "OPHoperHPO/image-background-remove-tool"
_NADERMX = "nadermx/backgroundremover"
_README = "linked by the U-2-Net README"
U2NETP_SOURCES = (
    _release(_OPHOPERHPO, "3.2", "u2netp.pth"),
    _mirror(_NADERMX, "models/u2netp.pth"),
    _google_drive("1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy", _README),
)
U2NET_SOURCES = (
    _release(_OPHOPERHPO, "3.2", "u2net.pth"),
    _mirror(_NADERMX, *(f"models/u2a{c}" for c in "abcd")),
    _google_drive("1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ", _README),
)
U2NET_HUMAN_SEG_SOURCES = (
    _mirror(_NADERMX, *(f"models/u2ha{c}" for c in "abcd")),
    _google_drive("1-Yg0cxgrNhHP-016FPdp902BR-kSsA4P", "the file rembg 1.0 downloaded"),
    _google_drive("1m_Kgs91b21gayc2XLW0ou8yugAIadWVP", _README),
)
# The embedded default: U²-NetP re-exported in half precision (see assets/u2netp/PROVENANCE.md).
U2NETP_PACKAGED = WeightFile(
    "assets/u2netp/u2netp_bnfolded_fp16.pth", size=2548183,
    sha256="ff867c88401dcd90d99f5882bffc7247e3e8f631191eb69015371fd3004322e5")

# The U-2-Net authors publish no checksums. The md5 sums below are the ones rembg 1.0's
# u2net/detect.py (load_model) checked the Drive files against before rembg moved to ONNX; a
# file from any source must match them (or be taken with --custom).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("u2netp", "u2net", "u2netp", "U²-NetP, 1.1 M parameters: fast, small subjects",
                  "u2netp.pth", "torch", input_size=320,
                  files=(WeightFile("u2netp.pth", md5="e4f636406ca4e2af789941e7f139ee2e",
                                    sources=U2NETP_SOURCES),),
                  packaged=U2NETP_PACKAGED),
        ModelSpec("u2net", "u2net", "u2net", "U²-Net, 44 M parameters: general salient objects",
                  "u2net.pth", "torch", input_size=320,
                  files=(WeightFile("u2net.pth", md5="347c3d51b01528e5c6c071e3cff1cb55",
                                    sources=U2NET_SOURCES),)),
        ModelSpec("u2net_human_seg", "u2net", "u2net", "U²-Net trained on people",
                  "u2net_human_seg.pth", "torch", input_size=320,
                  files=(WeightFile("u2net_human_seg.pth", md5="09fb4e49b7f785c9f855baf94916840a",
                                    sources=U2NET_HUMAN_SEG_SOURCES),)),
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
    source: WeightSource | None = None  # where ``weights`` were found


@dataclass(frozen=True)
class Found:
    path: Path
    source: WeightSource


def packaged_path(spec: ModelSpec) -> Path | None:
    """Where the weights shipped inside mattectl are (whether or not the file is there)."""
    if spec.packaged is None:
        return None
    return Path(str(importlib.resources.files("mattectl").joinpath(spec.packaged.name)))


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
                 modelscope_roots: Sequence[Path]) -> Found | None:
    if explicit is not None:
        folder = explicit.parent if explicit.is_file() else explicit
        return Found(folder, WeightSource.PATH) if _complete(spec, folder) else None
    if _complete(spec, models_dir / spec.name):
        return Found(models_dir / spec.name, WeightSource.MODELS_DIR)
    snapshot = modelscope_cache.find_snapshot(modelscope_roots, spec.modelscope_ids,
                                              (f.name for f in spec.files))
    return Found(snapshot, WeightSource.MODELSCOPE) if snapshot is not None else None


def locate(spec: ModelSpec, models_dir: Path, explicit: Path | None = None,
           modelscope_roots: Sequence[Path] = ()) -> Found | None:
    """Where the model's weights are and which kind of place that is, or None.

    One-file models: the configured file, else ``<models_dir>/<name>/<filename>``, else the first
    weight file in that folder, else the file shipped inside mattectl. Folder models: the
    configured folder (or the folder of a configured file), else ``<models_dir>/<name>/``, else
    a ModelScope cache under one of ``modelscope_roots``; a folder counts only when it holds
    every file of the model. A configured path that is missing is not replaced by anything.
    """
    if spec.folder:
        return _find_folder(spec, models_dir, explicit, modelscope_roots)
    if explicit is not None:
        return Found(explicit, WeightSource.PATH) if explicit.is_file() else None
    installed = _find_file(spec, models_dir / spec.name)
    if installed is not None:
        return Found(installed, WeightSource.MODELS_DIR)
    shipped = packaged_path(spec)
    if shipped is not None and shipped.is_file():
        return Found(shipped, WeightSource.PACKAGE)
    return None


def find_weights(spec: ModelSpec, models_dir: Path, explicit: Path | None = None,
                 modelscope_roots: Sequence[Path] = ()) -> Path | None:
    """The path :func:`locate` finds, or None."""
    found = locate(spec, models_dir, explicit, modelscope_roots)
    return found.path if found is not None else None


def _missing_reason(spec: ModelSpec, models_dir: Path, explicit: Path | None,
                    modelscope_roots: Sequence[Path]) -> str:
    if explicit is not None:
        where = f"{explicit}"
    elif spec.folder:
        where = ", ".join([str(models_dir / spec.name)] + [
            f"the ModelScope cache {root}" for root in modelscope_roots])
    else:
        where = str(models_dir / spec.name)
        shipped = packaged_path(spec)
        if shipped is not None:
            where += f" (and the copy shipped with mattectl, {shipped}, is missing)"
    what = " and ".join(f.name for f in spec.files) if spec.folder else "weights"
    return (f"model '{spec.name}' is not installed: no {what} at {where}. Run "
            f"`mattectl models pull {spec.name}`, or `mattectl models import {spec.name} PATH` "
            "for files copied in by hand.")


def packaged_problem(spec: ModelSpec, path: Path, size: int) -> str | None:
    """A sentence when the file shipped inside mattectl is not the expected one (by size)."""
    expected = spec.packaged
    if expected is None or expected.size is None or size == expected.size:
        return None
    return (f"the {spec.name} weights shipped with mattectl at {path} are damaged ({size} "
            f"bytes, expected {expected.size}); reinstall mattectl, or run `mattectl models "
            f"pull {spec.name}`")


def availability(spec: ModelSpec, models_dir: Path, explicit: Path | None = None,
                 modelscope_roots: Sequence[Path] = ()) -> Availability:
    """Whether a model can run here, and if not, a sentence saying how to fix it."""
    found = locate(spec, models_dir, explicit, modelscope_roots)
    if found is None:
        return Availability(False, None,
                            _missing_reason(spec, models_dir, explicit, modelscope_roots))
    if found.source == WeightSource.PACKAGE and \
            (problem := packaged_problem(spec, found.path, found.path.stat().st_size)):
        return Availability(False, found.path, problem, found.source)
    if importlib.util.find_spec(spec.framework) is None:
        return Availability(False, found.path, (
            f"model '{spec.name}' needs the Python package '{spec.framework}', which is not "
            "installed in this environment."
        ), found.source)
    return Availability(True, found.path, "", found.source)
