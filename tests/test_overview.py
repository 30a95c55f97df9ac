"""How `mattectl status` tells a live daemon from a stale row, a frozen one and a dead one: pid,
heartbeat age and the pid file; and what it shows of the jobs a dead daemon left running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from mattectl.errors import ExitCode
from mattectl.overview import daemon_state
from mattectl.store.models import utcnow
from mattectl.store.repository import DaemonInfo
from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess
from .support import wait_for


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
    (dict(host="here", pid=os.getpid(), beat_age_s=60), "not responding"),  # alive, silent
])
def test_daemon_state(row: dict, state: str) -> None:
    if row["host"] == "here":
        row = {**row, "host": socket.gethostname()}
    if row["pid"] == -1:
        row = {**row, "pid": dead_pid()}
    assert daemon_state(info(**row), heartbeat_s=2.0)[0] == state


def test_a_fresh_pid_file_keeps_a_daemon_alive_whose_job_log_heartbeat_is_old() -> None:
    # A full state disk: the row's heartbeat cannot be written, the pid file's mtime can.
    row = info(host=socket.gethostname(), pid=os.getpid(), beat_age_s=60)
    now = utcnow()
    assert daemon_state(row, 2.0, now, alive_at=now - timedelta(seconds=1)) == ("running", 1.0)
    assert daemon_state(row, 2.0, now, alive_at=now - timedelta(seconds=30))[0] == \
        "not responding"
    dead = info(host=socket.gethostname(), pid=dead_pid(), beat_age_s=60)
    assert daemon_state(dead, 2.0, now, alive_at=now)[0] == "stale"


def test_never_started() -> None:
    assert daemon_state(None, heartbeat_s=2.0) == ("never started", None)


def status(proc: DaemonProcess) -> tuple[int, dict, str]:
    as_json, text = proc.cli("status", "--json"), proc.cli("status")
    assert as_json.stdout, (as_json.returncode, as_json.stderr)
    return as_json.returncode, json.loads(as_json.stdout), " ".join(text.stdout.split())


@pytest.mark.slow
def test_a_frozen_daemon_is_not_responding_and_responds_again(daemon: DaemonProcess) -> None:
    daemon.start()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        code, as_json, text = wait_for(lambda: (r := status(daemon))[0] != 0 and r,
                                       timeout=60, interval=0.5, what="a missed heartbeat")
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert code == ExitCode.NOT_RESPONDING and as_json["state"] == "not responding"
    assert as_json["pid"] == pid and as_json["heartbeat_age_s"] >= 15
    assert text.startswith("not responding")
    assert f"its process (pid {pid}) is alive but its heartbeat is" in text
    wait_for(lambda: status(daemon)[0] == 0, timeout=30, what="the daemon to respond again")
    assert daemon.stop() == 0


@pytest.mark.slow
def test_the_jobs_of_a_killed_daemon_show_as_interrupted_not_running(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    daemon.start()
    for photo in sorted(human_photos, key=lambda p: p.stat().st_size)[-3:]:  # the slowest
        shutil.copyfile(photo, daemon.root / "in" / photo.name)
    wait_for(lambda: any(j.status == JobStatus.RUNNING for j in daemon.jobs()), timeout=60,
             what="a running job")
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    left = sorted(j.id for j in daemon.jobs() if j.status == JobStatus.RUNNING)
    assert left, "the kill should leave a job marked running in the job log"
    code, as_json, text = status(daemon)
    assert code == ExitCode.NOT_RUNNING and as_json["state"] == "stale"
    assert as_json["running_jobs"] == []
    assert sorted(j["job"] for j in as_json["interrupted_jobs"]) == left
    [folder] = as_json["folders"]
    assert folder["running"] == 0 and folder["interrupted"] == len(left)
    assert text.startswith("not running") and "working on" not in text
    assert f"interrupted: job {left[0]}:" in text
    assert f"{len(left)} job(s) were interrupted when the daemon ended" in text
