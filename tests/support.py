"""Constants and helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mattectl.backends.catalog import MODELS, packaged_path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SHARED_MODELS = SHARED / "models"
# The real u2netp weights: the embedded default model, shipped inside the package (a checkout
# needs no ../shared for them).
U2NETP_WEIGHTS = packaged_path(MODELS["u2netp"]) or Path("the package ships no u2netp")
HUMAN_IMAGES = SHARED / "data" / "u2net_official" / "test_human_images"
# CI runs as root; the daemon refuses root unless told, so tests that run it say so.
AS_ROOT = os.geteuid() == 0
ALLOW_ROOT_TOML = "allow_root = true" if AS_ROOT else ""
# As root, file modes do not stop reads or writes; a process started under this prefix (the
# daemon, a probe) lacks the capabilities that let root ignore them, so that they count.
WITHOUT_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if AS_ROOT else []
# Whether a test can make a folder unreadable or unwritable to a process it starts.
CAN_DENY_ACCESS = not AS_ROOT or shutil.which("setpriv") is not None


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: these tests need the shared photos and reference "
                    "results beside the checkout (../shared/data)")
    return path


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def fill_filesystem(folder: Path) -> Path:
    """Fill the filesystem that holds ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(bytes(4096))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def children(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def corrupt_an_index_page(db: Path) -> None:
    """Overwrite the claim index's root page of a real SQLite job log: queries may still work,
    an integrity check finds it."""
    con = sqlite3.connect(db)
    page, = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_jobs_claim'"
                        ).fetchone()
    con.close()
    with db.open("r+b") as fh:
        fh.seek((page - 1) * 4096)
        fh.write(b"\xff" * 4096)


def queue_photo(repo: Any, watch: Any, name: str, data: bytes) -> Any:
    """Write ``data`` as ``name`` into ``watch``'s drop folder and queue its job in ``repo``, as
    the intake would (a JobRepository and a WatchConfig; returns the Job)."""
    from mattectl.store.repository import NewJob

    path = watch.input / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    job, _ = repo.add(NewJob(watch.name, path, name, hashlib.sha256(data).hexdigest(),
                             st.st_size, st.st_mtime_ns))
    return job
