"""Putting checked weights in place: a file or a whole model folder, replaced in one rename.

Every install checks the new weights before they replace the old ones: the size and checksum
its publisher gives, then that the model really loads and runs (on the CPU, in this process).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mattectl.backends import backend_class
from mattectl.backends.catalog import ModelSpec, WeightFile
from mattectl.config import ModelsConfig
from mattectl.errors import ChecksumError, MattectlError, ModelUnavailableError
from mattectl.fsutil import fsync_dir, temp_path_for
from mattectl.modelstore.digest import Digest, checksum_problem, digest_file, size_problem

logger = logging.getLogger(__name__)

PROBE_SIZE = 64


def load_check(spec: ModelSpec, weights: Path, options: ModelsConfig,
               label: str | None = None) -> None:
    """Load the model from ``weights`` and matte a small gray image; raises when it cannot.
    Messages name ``label`` (where the weights came from) instead of a temporary path."""
    cpu = options.model_copy(update={"device": "cpu", "require_gpu": False})
    backend = backend_class(spec.backend)(spec, weights, cpu)
    backend.reports = False  # a check, not a deployment: the CPU is the point, no log line
    label = label or str(weights)
    try:
        alpha = backend.predict(np.full((PROBE_SIZE, PROBE_SIZE, 3), 128, np.uint8))
    except MattectlError as exc:
        raise type(exc)(str(exc).replace(str(weights), label)) from exc
    except Exception as exc:  # a framework's own error: say which model and file
        raise ModelUnavailableError(f"{label} does not load as {spec.name}: "
                                    f"{type(exc).__name__}: {exc}") from exc
    finally:
        backend.unload()
    if not np.isfinite(alpha).all():
        raise ModelUnavailableError(f"{label} loads as {spec.name} but answers NaN")


def compare(name: str, digest: Digest, expected: WeightFile, *, custom: bool) -> bool:
    """Whether the file is the published one; a difference raises unless ``custom``."""
    problem = size_problem(name, digest.size, expected.size) or \
        checksum_problem(name, digest, expected)
    if problem and not custom:
        raise ChecksumError(f"{problem}: not the file its publisher gives. Pass --custom to "
                            "use these weights anyway")
    return problem is None


def _copy(source: Path, target: Path, *, link: bool = False) -> None:
    """Copy, flushed to disk; with ``link``, hard-link when the source is on the same
    filesystem (files a ModelScope cache holds and replaces by renaming, never in place)."""
    if link:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copyfile(source, target)
    with target.open("rb") as fh:
        os.fsync(fh.fileno())


def install_file(source: Path, target: Path, check: Callable[[Path, Digest], None]) -> Digest:
    """Copy ``source`` beside ``target``, run ``check(path, digest)``, rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        _copy(source, tmp)
        digest = digest_file(tmp)
        if digest.size != source.stat().st_size:
            raise ChecksumError(f"copying {source} gave {digest.size} bytes of "
                                f"{source.stat().st_size} (disk full?)")
        check(tmp, digest)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(target.parent)
    return digest


def _swap_in(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def install_folder(spec: ModelSpec, source: Path, target: Path,
                   check: Callable[[Path, dict[str, Digest]], None], *,
                   link: bool = False) -> dict[str, Digest]:
    """Copy (or ``link``) the model's files from ``source`` into a staging folder beside
    ``target``, run ``check(folder, digests)``, then put the folder in place of ``target``."""
    missing = [f.name for f in spec.files if not (source / f.name).is_file()]
    if missing:
        raise ModelUnavailableError(f"{source} is not a {spec.name} model folder: no "
                                    f"{', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.staging")
    staging.mkdir()
    try:
        for f in spec.files:
            _copy(source / f.name, staging / f.name, link=link)
        digests = {f.name: digest_file(staging / f.name) for f in spec.files}
        check(staging, digests)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return digests
