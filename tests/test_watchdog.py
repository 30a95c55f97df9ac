"""A hung inference stops systemd's watchdog pings; progress brings them back."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from mattectl.app import Daemon
from mattectl.config import Settings
from mattectl.overview import build_overview
from mattectl.sdnotify import Notifier
from mattectl.store.status import JobStatus

from .support import wait_for
from .tiny_backend import GATE


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def test_hung_job_stops_the_pings(make_settings: Callable[..., Settings], tiny_models: Path,
                                  tmp_path: Path, small_photo: Path) -> None:
    settings = make_settings(watch={"model": "gated", "stability_s": 0.1},
                             daemon={"job_timeout_s": 1.0},
                             models={"dir": str(tiny_models)})
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                         "WATCHDOG_USEC": "200000"})
    daemon = Daemon(settings, notifier)
    daemon.start()
    try:
        wait_for(lambda: b"WATCHDOG=1" in drain(listener), what="pings while idle")
        (settings.watch[0].input / "a.jpg").write_bytes(small_photo.read_bytes())
        # Wait until the watchdog itself has seen the hang (pings decided before may be queued).
        wait_for(lambda: daemon.report().unhealthy, timeout=30, what="the hang to be noticed")
        assert "has been running for" in daemon.report().unhealthy
        drain(listener)
        time.sleep(0.6)  # six ping periods: none may come while the job hangs
        assert b"WATCHDOG=1" not in drain(listener)
        daemon.heartbeat()
        overview = build_overview(settings, daemon.repo)
        assert not overview.healthy and any("stalled" in p for p in overview.problems)
        GATE.set()  # the model answers after all
        wait_for(lambda: daemon.repo.list()[0].status == JobStatus.DONE, what="the job to end")
        wait_for(lambda: b"WATCHDOG=1" in drain(listener), what="pings to resume")
    finally:
        GATE.set()
        daemon.stop()
        listener.close()
