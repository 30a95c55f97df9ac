"""What `mattectl status` reports, built from the job log and the daemon's heartbeat.

Whether the daemon lives is read from three things: its heartbeat row in the job log, its pid
(on this host), and its pid file's mtime, which the daemon touches on each beat and which needs
no free space, so a full state disk does not make a working daemon look dead.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mattectl.config import Settings
from mattectl.matting.confidence import LOW_CONFIDENCE
from mattectl.report import DaemonReport, ModelReport
from mattectl.store.models import utcnow
from mattectl.store.repository import DaemonInfo, Job, JobRepository
from mattectl.store.status import JobStatus

RECENT_DONE = 200  # done jobs looked at for low confidence


@dataclass(frozen=True)
class FolderOverview:
    name: str
    input: str
    output: str
    model: str
    queued: int
    waiting: int  # queued for a retry, not yet due
    running: int
    done: int
    failed: int
    paused: str | None
    interrupted: int = 0  # left running by a daemon that is gone; re-queued at its next start


@dataclass(frozen=True)
class ModelOverview:
    name: str
    jobs: int
    p50_ms: float | None
    p95_ms: float | None
    devices: list[str]
    available: bool | None
    loaded: bool | None
    reason: str | None
    backend: str | None = None
    warning: str | None = None  # e.g. a GPU machine running the model on its CPU
    precision: str | None = None  # the number format the loaded model runs in


@dataclass(frozen=True)
class HostOverview:
    """A workstation on the job log. ``state``: up, down (silent past its heartbeat: crashed,
    switched off or cut off the network) or stopped. ``leased``: the running jobs of a host
    that is down, waiting for their lease to run out (then another host takes them)."""

    name: str
    state: str
    heartbeat_age_s: float
    version: str
    device: str
    models: list[str]
    workers: int
    running: int
    leased: int = 0
    lease_until: str | None = None  # when the last of ``leased`` returns to the queue


@dataclass(frozen=True)
class Overview:
    state: str  # running | not responding | stopped | stale (not running) | never started
    healthy: bool
    instance: str | None
    since: str | None
    heartbeat_age_s: float | None
    version: str | None
    pending_files: int
    running_jobs: list[dict[str, Any]]
    folders: list[FolderOverview]
    models: list[ModelOverview]
    last_output: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    pid: int | None = None
    interrupted_jobs: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[HostOverview] = field(default_factory=list)  # every workstation on the log
    # Recent cutouts the model was unsure of (confidence under LOW_CONFIDENCE): worth a look.
    low_confidence: list[dict[str, Any]] = field(default_factory=list)
    workers: int = 0  # the running daemon's jobs in flight at once (daemon.workers resolved)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def when(value: datetime | str | None) -> str:
    """A time as the page and ``mattectl status`` show it, in this machine's time zone:
    ``14:03:22`` today, else ``2026-12-04 14:03``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of a non-empty list, else None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_after(heartbeat_s: float) -> float:
    """A heartbeat older than this (three periods, at least 15 s) is missed."""
    return max(3 * heartbeat_s, 15.0)


def daemon_state(daemon: DaemonInfo | None, heartbeat_s: float, now: datetime | None = None,
                 *, alive_at: datetime | None = None,
                 this_host: str | None = None) -> tuple[str, float | None]:
    """``(state, heartbeat age)``. The age is that of the newest sign of life: the job log's
    heartbeat, or ``alive_at`` (the pid file's mtime, see :func:`pid_file_beat`).

    On this host a pid that is gone means ``stale`` (not running) whatever the row says, and a
    live pid with an old heartbeat means ``not responding`` (frozen, stopped by SIGSTOP, or too
    overloaded to beat). On another host an old heartbeat is all there is to go by: ``stale``.
    """
    if daemon is None:
        return "never started", None
    now = now or utcnow()
    age = (now - daemon.heartbeat_at).total_seconds()
    if alive_at is not None:
        age = min(age, (now - alive_at).total_seconds())
    if daemon.stopped_at is not None:
        return "stopped", age
    here = daemon.host == (this_host or socket.gethostname())
    if here and not _pid_alive(daemon.pid):
        return "stale", age
    if age > stale_after(heartbeat_s):
        return ("not responding" if here else "stale"), age
    return "running", age


def pid_file_beat(path: Path, pid: int) -> datetime | None:
    """When the daemon with ``pid`` last touched its pid file (``InstanceLock.touch``), or
    None when the file is not that daemon's."""
    try:
        owner = path.read_text().strip()
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(mtime, UTC) if owner == str(pid) else None


def _main_daemon(daemons: list[DaemonInfo], host: str) -> DaemonInfo | None:
    """The daemon ``status`` is about: ``host``'s newest, else (no daemon ever ran on this
    workstation) the newest of any."""
    return next((d for d in daemons if d.host == host), daemons[0] if daemons else None)


def host_overviews(repo: JobRepository, heartbeat_s: float, now: datetime,
                   running: dict[str, list[Job]]) -> list[HostOverview]:
    out = []
    for host in repo.hosts():
        age = (now - host.heartbeat_at).total_seconds()
        state = ("stopped" if host.stopped_at is not None else
                 "down" if age > stale_after(heartbeat_s) else "up")
        jobs = running.get(host.name, [])
        leases = [j.lease_until for j in jobs if j.lease_until is not None]
        out.append(HostOverview(
            name=host.name, state=state, heartbeat_age_s=round(age, 1), version=host.version,
            device=host.device, models=host.models, workers=host.workers,
            running=len(jobs) if state == "up" else 0,
            leased=0 if state == "up" else len(jobs),
            lease_until=max(leases).isoformat() if leases and state != "up" else None))
    return out


def build_overview(settings: Settings, repo: JobRepository,
                   host: str | None = None) -> Overview:
    """Everything `mattectl status` shows, and ``healthy``: running with no problem listed.
    The daemon is this workstation's (``host``: another's); the queue and the hosts are the
    whole studio's."""
    this_host = settings.host_name
    host = host or this_host
    daemon = _main_daemon(repo.daemons(), host)
    now = utcnow()
    alive_at = None
    if daemon is not None and daemon.host == this_host:
        alive_at = pid_file_beat(settings.pid_path, daemon.pid)
    state, age = daemon_state(daemon, settings.daemon.heartbeat_s, now, alive_at=alive_at,
                              this_host=this_host)
    alive = state in ("running", "not responding")
    report = daemon.report if daemon is not None and state == "running" else DaemonReport()
    paused = report.paused
    counts = repo.counts()
    running = repo.running_by_host()
    hosts = host_overviews(repo, settings.daemon.heartbeat_s, now, running)
    # A running job is running while its workstation is up; the main daemon's liveness is
    # read closer (its pid, its pid file) than a heartbeat can tell.
    up = {h.name for h in hosts if h.state == "up"} - {daemon.host if daemon else ""}
    if alive and daemon is not None:
        up.add(daemon.host)
    gone = [j for name, jobs in running.items() if name not in up for j in jobs]
    folders = []
    for watch in settings.watch:
        c = counts.get(watch.name, {})
        interrupted = sum(1 for j in gone if j.folder == watch.name)
        folders.append(FolderOverview(
            name=watch.name, input=str(watch.input), output=str(watch.output),
            model=watch.model_choice,
            queued=c.get("queued", 0) - c.get("waiting", 0), waiting=c.get("waiting", 0),
            running=c.get("running", 0) - interrupted, done=c.get("done", 0),
            failed=c.get("failed", 0), paused=paused.get(watch.name),
            interrupted=interrupted,
        ))
    # A job left running by a daemon that is gone is not running: the next start re-queues it
    # (or, on a shared job log, another workstation once its lease ran out).
    mine = [j for name, jobs in running.items() if name == host for j in jobs]
    jobs = [{"job": j.id, "file": j.rel_path, "folder": j.folder,
             "since": j.started_at.isoformat() if j.started_at else None}
            for j in (mine if repo.server else [j for js in running.values() for j in js])]
    models = _model_overviews(repo, report.models)
    last = repo.last_done()
    unsure = low_confidence(repo)
    problems = _liveness_problems(settings, daemon, state, age, now)
    if not alive and jobs:
        problems.append(f"{len(jobs)} job(s) were interrupted when the daemon ended; they are "
                        "re-queued when it starts again")
    problems += [f"workstation {h.name} is down (silent for {h.heartbeat_age_s:.0f} s)"
                 + (f"; its {h.leased} job(s) wait for their lease (until {h.lease_until}), "
                    "then another workstation takes them" if h.leased else "")
                 for h in hosts if h.state == "down" and h.name != host]
    problems += [f"folder {name} is paused: {why}" for name, why in paused.items()]
    if report.unhealthy:
        problems.append(f"stalled: {report.unhealthy}")
    if report.reload_refused:
        problems.append("the last reload was refused; the daemon runs with its previous "
                        f"configuration: {report.reload_refused}")
    problems += [m.warning for m in models if m.warning]
    return Overview(
        state=state,
        healthy=state == "running" and not problems,
        instance=daemon.instance if daemon else None,
        since=daemon.started_at.isoformat() if daemon else None,
        heartbeat_age_s=round(age, 1) if age is not None else None,
        version=daemon.version if daemon else None,
        pending_files=report.pending_files,
        running_jobs=jobs if alive else [],
        folders=folders,
        models=models,
        last_output=None if last is None else {
            "job": last.id, "folder": last.folder, "input": last.rel_path,
            "output": str(last.output_path) if last.output_path else None,
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
        },
        problems=problems,
        pid=daemon.pid if daemon else None,
        interrupted_jobs=[] if alive else jobs,
        hosts=hosts if host == this_host else [h for h in hosts if h.name == host],
        low_confidence=unsure,
        workers=report.workers,
    )


def low_confidence(repo: JobRepository, recent: int = RECENT_DONE) -> list[dict[str, Any]]:
    """The ``recent`` latest done jobs whose confidence is under ``LOW_CONFIDENCE``, newest
    first."""
    return [{"job": j.id, "file": j.rel_path, "folder": j.folder, "confidence": j.confidence,
             "output": str(j.output_path) if j.output_path else None}
            for j in repo.list(status=[JobStatus.DONE], limit=recent)
            if j.confidence is not None and j.confidence < LOW_CONFIDENCE]


def _liveness_problems(settings: Settings, daemon: DaemonInfo | None, state: str,
                       age: float | None, now: datetime) -> list[str]:
    if daemon is None or state == "never started":
        return ["the daemon is not running (it has never run with this config)"]
    if state == "stopped":
        return ["the daemon is not running (it was stopped)"]
    if state == "stale":
        return [f"the daemon is not running: {daemon.instance} was last heard of {age:.0f} s "
                "ago (it crashed or was killed)"]
    if state == "not responding":
        return [f"the daemon is not responding: its process (pid {daemon.pid}) is alive but "
                f"its heartbeat is {age:.0f} s old (frozen, stopped, or overloaded)"]
    logged = (now - daemon.heartbeat_at).total_seconds()
    if age is None or logged - age <= stale_after(settings.daemon.heartbeat_s):
        return []  # (a daemon frozen between its two beats is "not responding" soon enough)
    # Alive by its pid file long after its last beat in the job log: it cannot write there.
    return [f"the daemon runs but cannot write its job log: its last heartbeat there is "
            f"{logged:.0f} s old{_free_space(settings.daemon.state_dir)}"]


def _free_space(folder: Path) -> str:
    try:
        st = os.statvfs(folder)
    except OSError:
        return ""
    return f"; {folder} has {st.f_bavail * st.f_frsize / 1e6:.1f} MB free"


def _model_overviews(repo: JobRepository, reported: dict[str, ModelReport]) -> list[ModelOverview]:
    samples: dict[str, list[float]] = {}
    devices: dict[str, set[str]] = {}
    for s in repo.recent_inference():
        samples.setdefault(s.model, []).append(s.inference_ms)
        devices.setdefault(s.model, set()).add(s.device or "?")
    out = []
    for name in sorted(set(samples) | set(reported)):
        times = samples.get(name, [])
        live = reported.get(name, ModelReport())
        out.append(ModelOverview(
            name=name, jobs=len(times), p50_ms=percentile(times, 50),
            p95_ms=percentile(times, 95),
            devices=sorted(devices.get(name, set()) | ({live.device} if live.device else set())),
            available=live.available, loaded=live.loaded, reason=live.reason or None,
            backend=live.backend, warning=live.warning or None, precision=live.precision,
        ))
    return out
