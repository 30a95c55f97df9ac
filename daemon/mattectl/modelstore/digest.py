"""File sizes and checksums, computed in one streaming pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mattectl.backends.catalog import WeightFile

CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    size: int
    md5: str
    sha256: str


def digest_file(path: Path) -> Digest:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return Digest(size, md5.hexdigest(), sha256.hexdigest())


def size_problem(name: str, size: int, expected: int | None) -> str | None:
    """A sentence when a file's size is not the expected one: shorter means truncated."""
    if expected is None or size == expected:
        return None
    if size < expected:
        return f"{name} is truncated: {size} of {expected} bytes"
    return f"{name} is {size} bytes, {size - expected} more than the expected {expected}"


def checksum_problem(name: str, digest: Digest, expected: WeightFile) -> str | None:
    """A sentence when a file's checksum differs from the one its publisher gives."""
    if expected.sha256 is not None and digest.sha256 != expected.sha256:
        return f"{name}: sha256 {digest.sha256}, expected {expected.sha256}"
    if expected.md5 is not None and digest.md5 != expected.md5:
        return f"{name}: md5 {digest.md5}, expected {expected.md5} (the published checksum)"
    return None
