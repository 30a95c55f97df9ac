"""Constants and helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SHARED_MODELS = SHARED / "models"
U2NETP_WEIGHTS = SHARED_MODELS / "u2netp" / "u2netp_bnfolded_fp16.pth"
HUMAN_IMAGES = SHARED / "data" / "u2net_official" / "test_human_images"
# CI runs as root; the daemon refuses root unless told, so tests that run it say so.
AS_ROOT = os.geteuid() == 0
ALLOW_ROOT_TOML = "allow_root = true" if AS_ROOT else ""


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: these tests need the shared weights and photos beside "
                    "the checkout (../shared)")
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
