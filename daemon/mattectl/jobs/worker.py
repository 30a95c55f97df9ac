"""The worker: claims a job, runs it through the pipeline, writes the cutout, records the outcome.

Every way a job can end is decided here, in one place:

- a bad input (corrupt, unreadable, not an image) fails at once, with the reason;
- an input that changed or vanished since it was queued fails and is left where it is;
- a write that fails (disk full, no permission) or a model that fails is retried with a growing
  delay, up to ``daemon.max_attempts``, then fails;
- anything unexpected fails the job with the exception, logged with its traceback; the worker
  goes on with the next job.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from collections.abc import Callable as Thunk
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TypeVar

from mattectl.config import Settings, WatchConfig
from mattectl.errors import (
    BackendError,
    InputChangedError,
    InputError,
    InvalidTransitionError,
    JobLogUnavailableError,
    ModelUnavailableError,
    OutputError,
    RuleBlockedError,
)
from mattectl.jobs.disposition import move_original
from mattectl.matting.naming import output_path
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, Recipe
from mattectl.matting.publish import publish_cutout
from mattectl.matting.stages import ms_since
from mattectl.store.repository import Job, JobRepository, JobResult

logger = logging.getLogger(__name__)

RETRYABLE = (OutputError, BackendError, ModelUnavailableError)
T = TypeVar("T")


class JobWorker:
    def __init__(
        self,
        worker_id: str,
        repo: JobRepository,
        pipeline: PhotoPipeline,
        settings: Settings,
        *,
        folders: Callable[[], Collection[str]],
        wake: threading.Event,
        on_input_changed: Callable[[str, Path], None] = lambda folder, path: None,
    ) -> None:
        self.worker_id = worker_id
        self.repo = repo
        self.pipeline = pipeline
        self.settings = settings
        self._watches = {w.name: w for w in settings.watch}
        self._folders = folders
        self._wake = wake
        self._on_input_changed = on_input_changed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: Job | None = None
        self.busy_since: float | None = None  # monotonic start of the current job

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mattectl-{self.worker_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Take no new job; the one running finishes (see :meth:`join`)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_once()
            except JobLogUnavailableError as exc:
                logger.warning("worker %s: job log unavailable (%s); waiting", self.worker_id,
                               exc.reason)
                job = None
                self._stop.wait(1.0)
            except Exception:
                logger.exception("worker %s: unexpected error; continuing", self.worker_id)
                job = None
                self._stop.wait(1.0)
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()

    # -- one job -------------------------------------------------------------------------------

    def run_once(self) -> Job | None:
        """Claim and process one job; None when nothing is due."""
        start = time.perf_counter()
        job = self.repo.claim(self.worker_id, self._folders())
        if job is None:
            return None
        claim_ms = ms_since(start)
        self.current, self.busy_since = job, time.monotonic()
        try:
            return self.process(job, db_ms=claim_ms)
        finally:
            self.current, self.busy_since = None, None

    def _persist(self, write: Thunk[[], T]) -> T:
        """Record an outcome, waiting out a locked job log: the work is done and must not be
        lost to a reader holding the database. Gives up only when the daemon stops (the job is
        then still ``running`` and is re-queued at the next start)."""
        delay = 0.1
        while True:
            try:
                return write()
            except JobLogUnavailableError as exc:
                if self._stop.is_set():
                    raise
                logger.warning("job log busy (%s); retrying in %.1f s", exc.reason, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def process(self, job: Job, *, db_ms: float = 0.0) -> Job:
        watch = self._watches.get(job.folder)
        if watch is None:
            return self._fail(job, None, f"folder '{job.folder}' is no longer configured",
                              JobResult())
        started = time.perf_counter()
        recipe = Recipe.of(watch)
        result = JobResult(model=None if recipe.rules else watch.model, db_ms=db_ms)
        try:
            photo = Photo(job.rel_path, self._read_input(job))
            cutout = self.pipeline.run(photo, recipe)
            result = replace(result, model=cutout.model, device=cutout.device,
                             width=cutout.width, height=cutout.height,
                             decode_ms=cutout.decode_ms, inference_ms=cutout.inference_ms,
                             encode_ms=cutout.encode_ms, decision=cutout.decision)
            written, note = self._write_output(job, watch, cutout)
            result = replace(result, output_path=written, note=note,
                             total_ms=ms_since(started))
        except InputChangedError as exc:
            return self._fail(job, None, str(exc), result)
        except InputError as exc:
            return self._fail(job, watch, str(exc), result)
        except RETRYABLE as exc:
            if isinstance(exc, RuleBlockedError):  # keep the decision that says why
                result = replace(result, decision=exc.decision)
            return self._retry_or_fail(job, watch, str(exc), result)
        except InvalidTransitionError as exc:
            logger.warning("job %d was taken from this worker: %s", job.id, exc)
            return self.repo.get(job.id)
        except Exception as exc:
            logger.exception("job %d: unexpected error", job.id)
            return self._fail(job, watch, f"internal error: {type(exc).__name__}: {exc}", result)
        done = self._persist(lambda: self.repo.finish(job.id, self.worker_id, result))
        logger.info("job %d done: %s -> %s (%s on %s, %.0f ms)", job.id, job.rel_path,
                    written or "skipped", cutout.model, cutout.device, result.total_ms)
        if watch.on_success == "move" and watch.processed_dir is not None:
            done = self._move_original(done, watch.processed_dir)
        return done

    def _read_input(self, job: Job) -> bytes:
        try:
            data = job.input_path.read_bytes()
        except FileNotFoundError:
            raise InputChangedError(
                f"{job.rel_path}: the file disappeared before it was processed") from None
        except PermissionError:
            raise InputError(f"{job.rel_path}: permission denied: the daemon may not read "
                             "this file") from None
        except OSError as exc:
            raise InputError(f"{job.rel_path}: cannot read: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != job.input_hash:
            self._on_input_changed(job.folder, job.input_path)
            raise InputChangedError(
                f"{job.rel_path}: the file changed after it was queued; its new content is "
                "queued as a new job")
        return data

    def _write_output(self, job: Job, watch: WatchConfig,
                      cutout: Cutout) -> tuple[Path | None, str | None]:
        """Publish the cutout atomically; returns (path written, note)."""
        target = output_path(watch, job.rel_path, cutout.model, date.today(), cutout.options)
        previous = job.output_path
        policy = watch.on_collision
        if previous is not None and previous.parent == target.parent \
                and previous.suffix == target.suffix and previous.exists():
            # Recorded by an earlier attempt of this very job (a crash, or `jobs retry`).
            target, policy = previous, "overwrite"
        written = publish_cutout(
            cutout.data, target, root=watch.output, policy=policy, name=job.rel_path,
            before=lambda path: self._persist(
                lambda: self.repo.record_output(job.id, self.worker_id, path)))
        if written is None:
            return None, f"skipped: {target} already exists (on_collision = 'skip')"
        return written, None

    # -- endings -------------------------------------------------------------------------------

    def _fail(self, job: Job, watch: WatchConfig | None, error: str, result: JobResult) -> Job:
        failed = self._persist(lambda: self.repo.fail(job.id, self.worker_id, error, result))
        logger.warning("job %d failed: %s", job.id, error)
        if watch is not None and watch.on_failure == "move" and watch.failed_dir is not None:
            failed = self._move_original(failed, watch.failed_dir)
        return failed

    def _retry_or_fail(self, job: Job, watch: WatchConfig, error: str,
                       result: JobResult) -> Job:
        max_attempts = self.settings.daemon.max_attempts
        if job.attempts >= max_attempts:
            return self._fail(job, watch, f"{error} (gave up after {job.attempts} attempts)",
                              result)
        delay = self.settings.daemon.retry_delay_s * 2 ** (job.attempts - 1)
        logger.warning("job %d: attempt %d of %d failed, retrying in %.0f s: %s", job.id,
                       job.attempts, max_attempts, delay, error)
        return self._persist(lambda: self.repo.requeue(
            job.id, self.worker_id, f"attempt {job.attempts} failed: {error}", delay))

    def _move_original(self, job: Job, dest_root: Path) -> Job:
        if not job.input_path.exists():
            return job
        try:
            moved = move_original(job.input_path, dest_root, job.rel_path)
        except OSError as exc:
            note = (f"the original could not be moved to {dest_root}: {exc.strerror or exc}; "
                    "it stays where it is")
            logger.error("job %d: %s", job.id, note)
            self._persist(lambda: self.repo.add_note(job.id, note))
            return job
        self._persist(lambda: self.repo.set_input_path(job.id, moved))
        return replace(job, input_path=moved)
