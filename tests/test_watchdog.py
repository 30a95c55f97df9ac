"""A hung inference stops systemd's watchdog pings; progress brings them back."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

from mattectl.app import Daemon
from mattectl.config import Settings
from mattectl.overview import Overview, build_overview
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
    settings = make_settings(watch={"model": "gated", "stability_s": 0.5},
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


def test_a_hung_job_shows_in_status_without_systemds_watchdog(
        make_settings: Callable[..., Settings], tiny_models: Path, small_photo: Path) -> None:
    # Started by hand or by a unit without WatchdogSec=: no pings, and still `status` knows.
    settings = make_settings(watch={"model": "gated", "stability_s": 0.5},
                             daemon={"job_timeout_s": 1.0}, models={"dir": str(tiny_models)})
    daemon = Daemon(settings, Notifier({}))
    daemon.start()
    try:
        (settings.watch[0].input / "a.jpg").write_bytes(small_photo.read_bytes())
        wait_for(lambda: daemon.repo.list() and daemon.repo.list()[0].status
                 == JobStatus.RUNNING, timeout=30, what="the job to start")

        def seen() -> Overview | None:
            daemon.heartbeat()  # what the scheduler does every heartbeat_s
            overview = build_overview(settings, daemon.repo)
            return overview if overview.problems else None

        overview = wait_for(seen, timeout=30, what="the hang in status")
        job = daemon.repo.list()[0]
        assert not overview.healthy and overview.state == "running"
        [problem] = overview.problems
        assert re.fullmatch(rf"stalled: job {job.id} has been running for \d+ s "
                            r"\(daemon.job_timeout_s = 1\)", problem), problem
        GATE.set()
        wait_for(lambda: daemon.repo.list()[0].status == JobStatus.DONE, what="the job to end")
        daemon.heartbeat()
        assert build_overview(settings, daemon.repo).healthy
    finally:
        GATE.set()
        daemon.stop()
