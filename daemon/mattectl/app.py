"""The composition root: ``Daemon.start()`` reads as a checklist, ``stop()`` undoes it."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.observers.api import BaseObserver

from mattectl import __version__
from mattectl.backends.cache import ModelCache
from mattectl.config import Settings
from mattectl.errors import MattectlError
from mattectl.fsutil import sweep_temp_files
from mattectl.jobs.pipeline import MattingPipeline
from mattectl.jobs.worker import JobWorker
from mattectl.scheduler import build_scheduler
from mattectl.store.repository import Job, JobRepository
from mattectl.watch.handler import start_observers, stop_observers
from mattectl.watch.intake import Intake

logger = logging.getLogger(__name__)


class InstanceLock:
    """One daemon per state directory: an exclusive lock on ``mattectl.pid``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise MattectlError(f"another mattectl (pid {other}) is running with state "
                                f"directory {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = socket.gethostname()
        self.instance = f"{self.host}:{os.getpid()}"
        self.lock = InstanceLock(settings.daemon.state_dir / "mattectl.pid")
        self.paused: dict[str, str] = {}  # folder -> why its jobs are held
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.repo: JobRepository | None = None
        self.models: ModelCache | None = None
        self.intake: Intake | None = None
        self.observers: list[BaseObserver] = []
        self.workers: list[JobWorker] = []
        self.scheduler: BackgroundScheduler | None = None

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        self.lock.acquire()
        self.repo = JobRepository.open(settings.database_path)
        self._requeue_crashed()
        self._prepare_folders()
        self.models = ModelCache(settings.models, settings.models_dir)
        self.check_models()
        self._preload()
        pipeline = MattingPipeline(self.models, max_pixels=settings.daemon.max_pixels)
        self.intake = Intake(settings.watch, self.repo, self._on_queued)
        self.intake.start()
        self.observers = start_observers(settings.watch, self.intake.notify)
        self.intake.scan()  # photos dropped while the daemon was down
        self.workers = [
            JobWorker(f"{self.instance}:w{i}", self.repo, pipeline, settings,
                      folders=self.active_folders, wake=self.wake,
                      on_input_changed=self.intake.notify)
            for i in range(settings.daemon.workers)
        ]
        for worker in self.workers:
            worker.start()
        self.scheduler = build_scheduler(self)
        self.scheduler.start()
        self.repo.register_daemon(self.instance, self.host, os.getpid(), __version__,
                                  self.info())
        logger.info("mattectl %s running: %d folder(s), %d worker(s), state in %s",
                    __version__, len(settings.watch), len(self.workers),
                    settings.daemon.state_dir)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        stop_observers(self.observers)
        if self.intake is not None:
            self.intake.stop()
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            worker.join()
        if self.models is not None:
            self.models.unload_all()
        if self.repo is not None:
            self.repo.daemon_stopped(self.instance)
            self.repo.close()
        self.lock.release()
        self.stopped.set()
        logger.info("mattectl stopped")

    def run(self) -> None:
        """Start, wait for SIGTERM or SIGINT, stop."""
        shutdown = threading.Event()

        def _on_signal(signum: int, _frame: object) -> None:
            logger.info("received %s: stopping", signal.Signals(signum).name)
            shutdown.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        self.start()
        try:
            shutdown.wait()
        finally:
            self.stop()

    # -- start-up steps ------------------------------------------------------------------------

    def _requeue_crashed(self) -> None:
        assert self.repo is not None
        ids = self.repo.reap(self.host)
        if ids:
            logger.warning("re-queued %d job(s) left running by an earlier run: %s", len(ids),
                           ", ".join(map(str, ids)))

    def _prepare_folders(self) -> None:
        for watch in self.settings.watch:
            watch.output.mkdir(parents=True, exist_ok=True)
            for leftover in sweep_temp_files(watch.output):
                logger.warning("removed a partial output left by a crash: %s", leftover)

    def _preload(self) -> None:
        assert self.models is not None
        for name in self.settings.models.preload:
            try:
                self.models.get(name).load()
            except MattectlError as exc:
                logger.error("cannot preload %s: %s", name, exc)

    # -- called by workers, the intake and the scheduler ---------------------------------------

    def active_folders(self) -> list[str]:
        return [w.name for w in self.settings.watch if w.name not in self.paused]

    def _on_queued(self, _job: Job) -> None:
        self.wake.set()

    def check_models(self) -> None:
        """Hold the jobs of folders whose model cannot run, and say how to fix it."""
        assert self.models is not None
        for watch in self.settings.watch:
            found = self.models.availability(watch.model)
            if not found.ok and watch.name not in self.paused:
                logger.error("folder %s is paused (photos are queued, not processed): %s",
                             watch.name, found.reason)
                self.paused[watch.name] = found.reason
            elif found.ok and watch.name in self.paused:
                logger.info("folder %s resumes: model %s is available", watch.name, watch.model)
                del self.paused[watch.name]
                self.wake.set()
        idle = self.settings.models.idle_unload_s
        if idle > 0:
            self.models.unload_idle(idle)

    def rescan(self) -> None:
        if self.intake is not None:
            self.intake.scan()

    def heartbeat(self) -> None:
        if self.repo is not None:
            self.repo.heartbeat(self.instance, self.info())

    def info(self) -> dict[str, Any]:
        """What this daemon reports about itself in ``mattectl status``."""
        models = sorted({w.model for w in self.settings.watch} | set(self.settings.models.preload))
        return {
            "config": str(self.settings.source) if self.settings.source else None,
            "paused": dict(self.paused),
            "models": self.models.describe(models) if self.models else {},
            "pending_files": self.intake.pending if self.intake else 0,
            "running": [
                {"job": w.current.id, "file": w.current.rel_path, "folder": w.current.folder}
                for w in self.workers if w.current is not None
            ],
            "workers": len(self.workers),
        }
