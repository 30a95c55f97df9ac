"""The weights shipped inside mattectl, held to their size and sha256 before every load.

:mod:`mattectl.backends.catalog` finds them with ``stat`` calls alone; this module reads them
whole (about 2.5 MB: a few milliseconds), once per load, so that a damaged installation fails
with a sentence instead of loading wrong weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mattectl.backends.catalog import ModelSpec, packaged_path, packaged_problem
from mattectl.errors import ModelUnavailableError

CHUNK = 1 << 20


def _sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def check(spec: ModelSpec, weights: Path) -> None:
    """Raise :class:`ModelUnavailableError` when ``weights`` is the file shipped with mattectl
    and it is not the file the catalog describes. Other files are left to `mattectl models`
    (pull, import and verify check them against the published and recorded checksums)."""
    shipped = packaged_path(spec)
    weights = Path(weights)
    if shipped is None or spec.packaged is None or weights.resolve() != shipped.resolve():
        return
    try:
        size, sha256 = _sha256(weights)
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read the {spec.name} weights shipped with "
                                    f"mattectl at {weights}: {exc}") from exc
    problem = packaged_problem(spec, weights, size)
    if problem is None and sha256 != spec.packaged.sha256:
        problem = (f"the {spec.name} weights shipped with mattectl at {weights} are damaged "
                   f"(sha256 {sha256}, expected {spec.packaged.sha256}); reinstall mattectl, or "
                   f"run `mattectl models pull {spec.name}`")
    if problem:
        raise ModelUnavailableError(problem)
