"""How `mattectl status` tells a live daemon from a stale row: pid and heartbeat age."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from mattectl.overview import daemon_state
from mattectl.store.models import utcnow
from mattectl.store.repository import DaemonInfo


def info(*, host: str, pid: int, beat_age_s: float, stopped: bool = False) -> DaemonInfo:
    now = utcnow()
    return DaemonInfo(instance=f"{host}:{pid}", host=host, pid=pid, version="0",
                      started_at=now - timedelta(hours=1),
                      heartbeat_at=now - timedelta(seconds=beat_age_s),
                      stopped_at=now if stopped else None)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(("row", "state"), [
    (dict(host="here", pid=os.getpid(), beat_age_s=1), "running"),
    (dict(host="here", pid=os.getpid(), beat_age_s=1, stopped=True), "stopped"),
    (dict(host="here", pid=-1, beat_age_s=1), "stale"),  # pid gone on this host
    (dict(host="other-host", pid=1, beat_age_s=60), "stale"),  # heartbeat too old
    (dict(host="other-host", pid=1, beat_age_s=5), "running"),  # its pid is not ours to test
])
def test_daemon_state(row: dict, state: str) -> None:
    if row["host"] == "here":
        row = {**row, "host": socket.gethostname()}
    if row["pid"] == -1:
        row = {**row, "pid": dead_pid()}
    assert daemon_state(info(**row), heartbeat_s=2.0)[0] == state


def test_never_started() -> None:
    assert daemon_state(None, heartbeat_s=2.0) == ("never started", None)
