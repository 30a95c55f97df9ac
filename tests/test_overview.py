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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from mattectl.errors import ExitCode
from mattectl.overview import build_overview, daemon_state, when
from mattectl.report import DaemonReport
from mattectl.store.models import utcnow
from mattectl.store.repository import DaemonInfo, HostInfo, JobRepository, JobResult, NewJob
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


def test_the_studio_overview_shows_every_workstation_and_a_silent_ones_leased_jobs(
        job_log: JobRepository, make_settings) -> None:
    settings = make_settings(watch={"name": "studio"},
                             database={"host_name": "pc1", "lease_s": 60})
    repo, now = job_log, utcnow()
    for n in range(5):
        repo.add(NewJob("studio", Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1))
    for name, beat_age_s in (("pc1", 1), ("pc2", 1), ("pc3", 120)):
        beat = now - timedelta(seconds=beat_age_s)
        repo.register_daemon(f"{name}:{os.getpid()}", name, os.getpid(), "9.9", DaemonReport())
        repo.register_host(HostInfo(name, f"{name}:1", "9.9", "CPU", ["u2netp"], 2, beat, beat,
                                    None))
        assert repo.claim(f"{name}:1:w0", ["studio"]) is not None
    with repo.engine.begin() as conn:  # pc3's daemon beat last two minutes ago
        conn.execute(text("UPDATE daemons SET heartbeat_at = :t WHERE host = 'pc3'"),
                     {"t": (now - timedelta(seconds=120)).replace(tzinfo=None)})
    ov = build_overview(settings, repo)
    assert [(h.name, h.state, h.running, h.leased) for h in ov.hosts] == [
        ("pc1", "up", 1, 0), ("pc2", "up", 1, 0), ("pc3", "down", 0, 1)]
    folder, = ov.folders
    assert (folder.queued, folder.running, folder.interrupted) == (2, 2, 1)
    assert ov.instance == f"pc1:{os.getpid()}"  # this workstation's daemon
    assert any("pc3 is down" in p and "wait for their lease" in p for p in ov.problems)
    other = build_overview(settings, repo, host="pc2")
    assert ov.state == other.state == "running"
    assert other.instance.startswith("pc2:") and [h.name for h in other.hosts] == ["pc2"]
    assert build_overview(settings, repo, host="pc3").state == "stale"


def test_status_lists_the_recent_cutouts_the_model_was_unsure_of(
        repo: JobRepository, make_settings) -> None:
    settings = make_settings(watch={"name": "studio"})
    for n, sure in enumerate((0.95, 0.31, None, 0.58)):
        repo.add(NewJob("studio", Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1))
        claimed = repo.claim("w0", ["studio"])
        assert claimed is not None
        repo.finish(claimed.id, "w0", JobResult(model="u2netp", confidence=sure,
                                                output_path=Path(f"/out/{n}.png")))
    ov = build_overview(settings, repo)
    assert [(j["file"], j["confidence"]) for j in ov.low_confidence] == [
        ("3.jpg", 0.58), ("1.jpg", 0.31)]  # newest first; unmeasured jobs are not flagged
    assert json.loads(json.dumps(ov.to_dict()))["low_confidence"][1]["output"] == "/out/1.png"


def test_times_read_as_a_person_reads_them() -> None:
    """`mattectl status` and the page: today's times to the second, older ones with the date,
    in this machine's time zone (the job log keeps UTC)."""
    now = datetime.now(UTC)
    assert when(now.isoformat()) == now.astimezone().strftime("%H:%M:%S")
    old = now - timedelta(days=3)
    assert when(old) == old.astimezone().strftime("%Y-%m-%d %H:%M")
    assert when(None) == "-"
