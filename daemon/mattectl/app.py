"""The composition root: ``Daemon.start()`` reads as a checklist, ``stop()`` undoes it.

The main thread owns the lifecycle. Signal handlers only record what was asked (stop on SIGTERM
or SIGINT, reload on SIGHUP); ``run()`` carries it out between waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import signal
import threading
import time
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.observers.api import BaseObserver

from mattectl import __version__, checks, housekeeping
from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import Availability
from mattectl.condition_log import ConditionLog
from mattectl.config import Settings, WatchConfig, is_loopback, state_dir_problem
from mattectl.errors import (
    ConfigError,
    InvalidTransitionError,
    JobLogUnavailableError,
    MattectlError,
)
from mattectl.fsutil import sweep_temp_files
from mattectl.gpu import nvidia_gpus
from mattectl.jobs import pauses
from mattectl.jobs.worker import JobWorker
from mattectl.matting.pipeline import PhotoPipeline
from mattectl.matting.planner import RulePlanner
from mattectl.report import DaemonReport
from mattectl.scheduler import build_scheduler
from mattectl.sdnotify import Notifier
from mattectl.store.models import utcnow
from mattectl.store.repository import HostInfo, Job, JobRepository
from mattectl.thumbnails import ThumbnailStore
from mattectl.watch.handler import start_observers, stop_observers
from mattectl.watch.intake import Intake
from mattectl.web import auth as web_auth
from mattectl.web.routes import LOOPBACK_NAMES, Studio, create_app
from mattectl.web.server import WebServer

logger = logging.getLogger(__name__)


class InstanceLock:
    """One daemon per state directory: an exclusive lock on ``mattectl.pid``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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

    def touch(self) -> None:
        """A heartbeat that needs no free space (an inode's times): ``mattectl status`` reads it
        when a full state disk keeps the job log's heartbeat from being written."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def check_user(settings: Settings) -> None:
    if os.geteuid() == 0 and not settings.daemon.allow_root:
        raise MattectlError(
            "refusing to run as root: run mattectl as its own user (the systemd unit does), "
            "or set daemon.allow_root = true")


def prepare_state_dir(path: Path, source: str = "config") -> None:
    """The state directory and everything in it are for the service user alone: created 0700
    when missing. An existing one is never chmodded (it could be /tmp, or a folder others
    use); it is refused when it is a symbolic link, belongs to another user or others may write
    to it (:func:`mattectl.config.state_dir_problem`). Raises :class:`ConfigError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileExistsError:
            created = False
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:  # a symbolic link (ELOOP), a file (ENOTDIR), no permission
        try:
            problem = state_dir_problem(os.lstat(path), path)
        except OSError:
            problem = None
        raise ConfigError(source, [("daemon.state_dir", problem or (
            f"cannot create or open {path}: {exc.strerror}"))]) from None
    try:
        info = os.fstat(fd)
        if created and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o700)  # mkdir's mode, less whatever the umask took
            info = os.fstat(fd)
    finally:
        os.close(fd)
    if problem := state_dir_problem(info, path, owner=os.geteuid()):
        raise ConfigError(source, [("daemon.state_dir", problem)])


class Daemon:
    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.host = settings.host_name  # database.host_name, else the machine's host name
        self.instance = f"{self.host}:{os.getpid()}"
        self.lock = InstanceLock(settings.pid_path)
        self.pauses = pauses.FolderPauses()  # folders whose jobs are held, and why
        # One line when the job log cannot be written (a full state disk), not one per tick.
        self.job_log = ConditionLog(logger, "job log busy", "job log writable again")
        self._reload_refused: str | None = None  # until the next good reload
        self.wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._unhealthy: str | None = None
        self.repo: JobRepository | None = None
        self.models: ModelCache | None = None
        self.planner: RulePlanner | None = None
        self.intake: Intake | None = None
        self.observers: list[BaseObserver] = []
        self.workers: list[JobWorker] = []
        self.scheduler: BackgroundScheduler | None = None
        # Workers still inside a job after the grace period; their jobs were re-queued.
        self.abandoned: list[JobWorker] = []
        self.gpus: list[str] = []  # NVIDIA GPUs the driver shows (see mattectl.gpu)
        self.thumbnails = ThumbnailStore(settings.web_dir / "thumbnails")
        self.web: WebServer | None = None  # the studio page, with [web] enabled

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        check_user(self.settings)
        self._check_gpu()
        prepare_state_dir(self.settings.daemon.state_dir, str(self.settings.source or "config"))
        self.lock.acquire()
        self._open_job_log()
        self._requeue_interrupted()
        self._start_web()
        self.models = ModelCache(self.settings.models, self.settings.models_dir)
        self._start_processing()
        self.repo.register_daemon(self.instance, self.host, os.getpid(), __version__,
                                  self.report())
        self.repo.register_host(self.host_info())
        self.notifier.ready(self.status_line())
        logger.info("mattectl %s running: %d folder(s), %d worker(s), state in %s, job log %s "
                    "(host %s)", __version__, len(self.settings.watch), len(self.workers),
                    self.settings.daemon.state_dir, self.settings.job_log_shown, self.host)

    def stop(self) -> None:
        self.notifier.stopping()
        if self.web is not None:
            self.web.stop()
        self._stop_processing()
        if self.models is not None and not self.abandoned:
            # (with an abandoned worker, a model may be busy: the process exits instead)
            self.models.unload_all()
        if self.repo is not None:
            self.repo.daemon_stopped(self.instance)
            self.repo.host_stopped(self.host, self.instance)
            self.repo.close()
        self.lock.release()
        self.notifier.close()
        logger.info("mattectl stopped")

    def _start_processing(self) -> None:
        """Everything that reads the config's folders and models; undone by a reload."""
        assert self.repo is not None and self.models is not None
        settings = self.settings
        self._prepare_folders()
        self.planner = RulePlanner.create(self.models, settings.daemon.rules_dir,
                                          self.repo.recent_inference)
        self.check_models()
        self._preload()
        pipeline = PhotoPipeline(self.models, max_pixels=settings.daemon.max_pixels,
                                 min_side=settings.daemon.min_side, planner=self.planner,
                                 max_decode_mb=settings.daemon.max_decode_mb)
        self.intake = Intake(settings.watch, self.repo, self._on_queued, job_log=self.job_log)
        self.intake.start()
        self.observers = start_observers(settings.watch, self.intake.notify)
        self.intake.request_scan()  # photos dropped while the daemon was down
        self.workers = [
            JobWorker(f"{self.instance}:w{i}", self.repo, pipeline, settings,
                      folders=self.active_folders, wake=self.wake,
                      on_input_changed=self.intake.notify, paused=self.pauses,
                      job_log=self.job_log,
                      thumbnails=self.thumbnails if self.web is not None else None)
            for i in range(settings.daemon.worker_count)
        ]
        for worker in self.workers:
            worker.start()
        self.scheduler = build_scheduler(self)
        self.scheduler.start()

    def _stop_processing(self) -> None:
        """Take no new file or job; give running jobs the grace period, then re-queue them."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)  # no job may race the teardown
            self.scheduler = None
        stop_observers(self.observers)
        self.observers = []
        if self.intake is not None:
            self.intake.stop()
        self._stop_workers(self.settings.daemon.stop_grace_s)

    def _stop_workers(self, grace_s: float) -> None:
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + grace_s
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            job = worker.current
            if worker.alive and job is not None and self.repo is not None:
                self.abandoned.append(worker)
                try:
                    self.repo.requeue(job.id, worker.worker_id, "interrupted by a shutdown; "
                                      "re-queued", count_attempt=False)
                    logger.warning("job %d did not finish within %.0f s; re-queued", job.id,
                                   grace_s)
                except InvalidTransitionError:
                    pass  # it finished after all
        self.workers = []

    # -- the main thread -----------------------------------------------------------------------

    def run(self) -> None:
        """Start, then serve stop (SIGTERM, SIGINT) and reload (SIGHUP) requests until stopped.

        The handlers only set flags: a handler that took a lock (``Event.set``) could deadlock
        against the main thread holding it. The kernel may hand a signal to any thread, and a
        main thread blocked in a lock would not notice it; the wake-up pipe (written by the
        C-level handler, whichever thread caught the signal) makes ``select`` return at once.
        """
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous_fd = signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            self.start()
        except BaseException:
            self._restore_wakeup(previous_fd, wake_r, wake_w)
            raise
        try:
            while not self._stop_requested:
                select.select([wake_r], [], [], 1.0)
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                if self._reload_requested and not self._stop_requested:
                    self._reload_requested = False
                    self.reload()
        finally:
            try:
                self.stop()
            finally:
                self._restore_wakeup(previous_fd, wake_r, wake_w)

    @staticmethod
    def _restore_wakeup(previous_fd: int, wake_r: int, wake_w: int) -> None:
        signal.set_wakeup_fd(previous_fd)
        os.close(wake_r)
        os.close(wake_w)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._reload_requested = True
        else:
            self._stop_requested = True

    def reload(self) -> None:
        """Re-read the config and restart intake and workers; jobs stay in the job log, so none
        is lost or queued twice. An invalid config leaves the running one in place."""
        try:
            new = checks.load(self.settings.source, checks=checks.DAEMON_CHECKS)
        except ConfigError as exc:
            logger.error("reload refused, the running configuration stays: %s", exc)
            self._refuse_reload(f"invalid config {exc.source}: " + "; ".join(
                f"{key}: {message}" if key else message for key, message in exc.problems))
            return
        if new.daemon.state_dir != self.settings.daemon.state_dir:
            logger.error("reload refused: daemon.state_dir cannot change without a restart")
            self._refuse_reload("daemon.state_dir cannot change without a restart")
            return
        if new.web != self.settings.web:
            logger.warning("[web] changes take effect at the next start; the page carries on "
                           "as it was")
        logger.info("reloading %s", self.settings.source)
        self.notifier.reloading()
        self._stop_processing()
        old_settings, old_models = self.settings, self.models
        if new.models != self.settings.models:
            self.models = ModelCache(new.models, new.models_dir)
        self.settings = new
        self.pauses.clear()
        try:
            self._start_processing()
        except (OSError, MattectlError) as exc:
            # What validation cannot see (a folder we may not create, no inotify watches left):
            # go back to the running configuration rather than stop the service.
            logger.error("reload failed, back to the running configuration: %s", exc)
            self._stop_processing()
            self.settings, self.models = old_settings, old_models
            self.pauses.clear()
            self._start_processing()
            self._refuse_reload(f"reload failed, back to the running configuration: {exc}")
            self.notifier.ready(self.status_line())
            return
        self._reload_refused = None
        if old_models is not None and old_models is not self.models and not self.abandoned:
            old_models.unload_all()  # (with an abandoned worker a model may be busy)
        self.heartbeat()
        self.notifier.ready(self.status_line())
        logger.info("reloaded: %d folder(s)", len(new.watch))

    def _refuse_reload(self, why: str) -> None:
        """Keep the refusal for ``mattectl status`` (the report) until the next good reload."""
        self._reload_refused = " ".join(why.split())  # a config error's lines, on one line
        self.heartbeat()

    # -- start-up steps ------------------------------------------------------------------------

    def _check_gpu(self) -> None:
        """Find the NVIDIA GPUs from the driver's files; with models.require_gpu, none is fatal."""
        self.gpus = nvidia_gpus()
        if self.gpus:
            logger.info("GPU: %s", ", ".join(self.gpus))
        elif self.settings.models.require_gpu:
            raise MattectlError("models.require_gpu is set, but this machine shows no NVIDIA GPU "
                                "(no /proc/driver/nvidia/gpus, no /dev/nvidia*, or "
                                "CUDA_VISIBLE_DEVICES hides them): not starting")
        else:
            logger.info("no NVIDIA GPU on this machine: models run on the CPU")

    def _open_job_log(self) -> None:
        target = self.settings.job_log
        # Refuses a lost, emptied or corrupt database (quick_check) with what to do about it: a
        # fresh one would queue every photo in the drop folders again; and a schema newer than
        # this mattectl knows (SchemaTooNewError).
        self.repo = JobRepository.open(target, verify=True,
                                       lease_s=self.settings.database.lease_s)
        if not isinstance(target, Path):
            return  # a server database: its files are the server's
        db = target
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if path.exists():
                os.chmod(path, 0o600)

    def _start_web(self) -> None:
        """Serve the studio page (``[web] enabled``); a port in use, or an address beyond this
        computer without a token, stops the start with the reason."""
        assert self.repo is not None
        web = self.settings.web
        if not web.enabled:
            return
        token = web_auth.load_token(self.settings.web_dir) if web.token else None
        studio = Studio(settings=lambda: self.settings, repo=self.repo,
                        thumbnails=self.thumbnails, keys=web_auth.Keys(token),
                        web_dir=self.settings.web_dir, wake=self.wake.set,
                        hosts=LOOPBACK_NAMES | {web.address[0]} if is_loopback(web.address[0])
                        else None)
        self.web = WebServer(create_app(studio), web, has_token=token is not None)
        self.web.start()

    def _requeue_interrupted(self) -> None:
        assert self.repo is not None
        requeued, failed = self.repo.reap(self.host, self.settings.daemon.max_attempts)
        if requeued:
            logger.warning("re-queued %d job(s) left running by an earlier run: %s",
                           len(requeued), ", ".join(map(str, requeued)))
        for job_id in failed:
            logger.error("job %d failed: the daemon stopped during it too often", job_id)

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

    @property
    def paused(self) -> dict[str, str]:
        """Folder -> why its jobs are held (a missing model, a full or unwritable output, an
        unreadable drop folder)."""
        return self.pauses.reasons()

    def active_folders(self) -> list[str]:
        return [w.name for w in self.settings.watch if w.name not in self.pauses]

    def _on_queued(self, _job: Job) -> None:
        self.wake.set()

    def check_models(self) -> None:
        """Hold the jobs of folders whose model cannot run, and say how to fix it."""
        assert self.models is not None
        for watch in self.settings.watch:
            found = self._folder_availability(watch)
            if not found.ok:
                self.pauses.hold(watch.name, pauses.MODEL, found.reason)
            elif self.pauses.release(watch.name, pauses.MODEL,
                                     f"its model can run ({watch.model_choice})"):
                self.wake.set()
        idle = self.settings.models.idle_unload_s
        if idle > 0:
            self.models.unload_idle(idle)

    def check_pauses(self) -> None:
        """Probe the folders paused for a full or unwritable output or an unreadable drop
        folder; those whose condition cleared resume by themselves."""
        if self.pauses.recheck():
            self.wake.set()

    def _folder_availability(self, watch: WatchConfig) -> Availability:
        """A fixed model must be available; a rules folder only needs some model to run."""
        assert self.models is not None
        if watch.rules is None or self.planner is None:
            return self.models.availability(watch.model)
        problem = self.planner.folder_problem(watch.rules)
        return Availability(problem is None, None, problem or "")

    def rescan(self) -> None:
        if self.intake is not None:
            self.intake.request_scan()

    def prune(self) -> None:
        if self.repo is not None:
            # Once per studio: on a shared job log, the workstation holding the lock prunes.
            with self.repo.exclusive("prune") as mine:
                if mine:
                    housekeeping.prune_jobs(self.repo, self.settings.daemon.retention_days)
            self.thumbnails.prune(self.repo.output_hashes)  # those of the rows just pruned
            web_auth.prune_link_codes(self.settings.web_dir)
        for watch in self.settings.watch:
            housekeeping.prune_processed(watch)

    def maintain(self) -> None:
        if self.repo is not None:
            with self.repo.exclusive("maintenance") as mine:
                if mine:
                    housekeeping.maintain_database(self.repo)
                    housekeeping.prune_deliveries(self.repo, self.settings.watch,
                                                  self.settings.daemon.retention_days)

    def backup(self) -> None:
        if self.repo is not None:
            housekeeping.backup_database(self.repo, self.settings.daemon.backup_interval_h,
                                         self.settings.daemon.backup_keep)

    def heartbeat(self) -> None:
        self.lock.touch()  # first: it works when the job log cannot be written
        if self.models is not None:
            self.models.relay_output()
        if self.repo is not None:
            try:
                self.repo.heartbeat(self.instance, self.report())
                self.repo.host_heartbeat(self.host, self.instance, self.loaded_models())
                self.repo.renew_leases(self.instance)
                self._expire_leases()
            except JobLogUnavailableError as exc:
                self.job_log.failed(exc.reason)
            else:
                self.job_log.cleared()
        self.notifier.status(self.status_line())

    def _expire_leases(self) -> None:
        """Take back the jobs of workstations that stopped renewing their leases."""
        assert self.repo is not None
        requeued, failed = self.repo.expire_leases(self.settings.daemon.max_attempts)
        if requeued:
            logger.warning("re-queued %d job(s) whose lease ran out (their workstation stopped "
                           "answering): %s", len(requeued), ", ".join(map(str, requeued)))
            self.wake.set()
        for job_id in failed:
            logger.error("job %d failed: its lease ran out too often", job_id)

    def loaded_models(self) -> list[str]:
        if self.models is None:
            return []
        return sorted(name for name, model in self.report().models.items() if model.loaded)

    def host_info(self) -> HostInfo:
        now = utcnow()
        return HostInfo(self.host, self.instance, __version__,
                        ", ".join(self.gpus) or "CPU", self.loaded_models(),
                        len(self.workers), now, now, None)

    def health(self) -> str | None:
        """Why the daemon is not making progress, or None. Drives systemd's watchdog, and
        ``mattectl status`` through the report."""
        if self.intake is None or not self.intake.alive:
            return "the intake thread has stopped"
        now = time.monotonic()
        for worker in self.workers:
            if not worker.alive:
                return f"worker {worker.worker_id} has stopped"
            busy = worker.busy_since
            if busy is not None and now - busy > self.settings.daemon.job_timeout_s:
                job = worker.current
                return (f"job {job.id if job else '?'} has been running for {now - busy:.0f} s "
                        f"(daemon.job_timeout_s = {self.settings.daemon.job_timeout_s:.0f})")
        return None

    def watchdog(self) -> None:
        """Ping systemd's watchdog only while work progresses: a hung job stops the pings."""
        problem = self.health()
        if problem is None:
            self.notifier.watchdog()
            if self._unhealthy is not None:
                logger.warning("progress again: pinging systemd's watchdog")
        elif self._unhealthy is None:
            logger.error("not pinging systemd's watchdog: %s", problem)
        self._unhealthy = problem

    def status_line(self) -> str:
        """One line for `systemctl status`."""
        running = [w.current for w in self.workers if w.current is not None]
        queued: int | str = 0
        if self.repo is not None:
            try:
                queued = sum(c.get("queued", 0) for c in self.repo.counts().values())
            except JobLogUnavailableError:
                queued = "?"
        parts = [f"processing {', '.join(j.rel_path for j in running)}" if running else "idle",
                 f"{queued} queued"]
        if paused := self.paused:
            parts.append("paused: " + "; ".join(f"{name} ({why})"
                                                for name, why in sorted(paused.items())))
        if self._reload_refused:
            parts.append("reload refused")
        return "; ".join(parts)

    def report(self) -> DaemonReport:
        """What this daemon reports about itself in ``mattectl status``."""
        models = sorted({w.model for w in self.settings.watch} | set(self.settings.models.preload))
        return DaemonReport(
            config=str(self.settings.source) if self.settings.source else None,
            paused=self.paused,
            models=self.models.describe(models) if self.models else {},
            gpus=tuple(self.gpus),
            pending_files=self.intake.pending if self.intake else 0,
            workers=len(self.workers),
            unhealthy=self.health(),
            reload_refused=self._reload_refused,
        )
