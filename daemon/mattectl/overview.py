"""What `mattectl status` reports, built from the job log and the daemon's heartbeat."""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from mattectl.config import Settings
from mattectl.report import DaemonReport, ModelReport
from mattectl.store.models import utcnow
from mattectl.store.repository import DaemonInfo, JobRepository
from mattectl.store.status import JobStatus


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


@dataclass(frozen=True)
class Overview:
    state: str  # running | stopped | stale | never started
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def daemon_state(daemon: DaemonInfo | None, heartbeat_s: float,
                 now: datetime | None = None) -> tuple[str, float | None]:
    """``(state, heartbeat age)``: a heartbeat older than three periods, or a pid that is gone
    on this host, means the daemon is not running whatever its row says."""
    if daemon is None:
        return "never started", None
    age = ((now or utcnow()) - daemon.heartbeat_at).total_seconds()
    if daemon.stopped_at is not None:
        return "stopped", age
    if daemon.host == socket.gethostname() and not _pid_alive(daemon.pid):
        return "stale", age
    if age > max(3 * heartbeat_s, 15.0):
        return "stale", age
    return "running", age


def build_overview(settings: Settings, repo: JobRepository) -> Overview:
    daemons = repo.daemons()
    daemon = daemons[0] if daemons else None
    state, age = daemon_state(daemon, settings.daemon.heartbeat_s)
    report = daemon.report if daemon is not None and state == "running" else DaemonReport()
    paused = report.paused
    counts = repo.counts()
    folders = []
    for watch in settings.watch:
        c = counts.get(watch.name, {})
        folders.append(FolderOverview(
            name=watch.name, input=str(watch.input), output=str(watch.output),
            model=watch.model_choice,
            queued=c.get("queued", 0) - c.get("waiting", 0), waiting=c.get("waiting", 0),
            running=c.get("running", 0), done=c.get("done", 0), failed=c.get("failed", 0),
            paused=paused.get(watch.name),
        ))
    models = _model_overviews(repo, report.models)
    last = repo.last_done()
    problems = []
    if state != "running":
        problems.append(f"the daemon is not running ({state})")
    problems += [f"folder {name} is paused: {why}" for name, why in paused.items()]
    if report.unhealthy:
        problems.append(f"stalled: {report.unhealthy}")
    warnings = [m.warning for m in models if m.warning]
    problems += warnings
    return Overview(
        state=state,
        healthy=state == "running" and not paused and not report.unhealthy and not warnings,
        instance=daemon.instance if daemon else None,
        since=daemon.started_at.isoformat() if daemon else None,
        heartbeat_age_s=round(age, 1) if age is not None else None,
        version=daemon.version if daemon else None,
        pending_files=report.pending_files,
        running_jobs=[{"job": j.id, "file": j.rel_path, "folder": j.folder,
                       "since": j.started_at.isoformat() if j.started_at else None}
                      for j in repo.list(status=[JobStatus.RUNNING], limit=100)],
        folders=folders,
        models=models,
        last_output=None if last is None else {
            "job": last.id, "folder": last.folder, "input": last.rel_path,
            "output": str(last.output_path) if last.output_path else None,
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
        },
        problems=problems,
    )


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
            backend=live.backend, warning=live.warning or None,
        ))
    return out
