"""The worker: claims a job, runs it through the pipeline, writes the cutout, records the outcome.

Every way a job can end is decided here, in one place:

- a bad input (corrupt, unreadable, not an image) fails at once, with the reason;
- an input that changed or vanished since it was queued fails and is left where it is;
- a condition of the whole folder (its output disk full, read-only or not writable, its drop
  folder unreadable) pauses the folder: the job goes back to the queue without spending an
  attempt, and the folder resumes when a periodic probe finds the condition gone
  (:mod:`mattectl.jobs.conditions`, :mod:`mattectl.jobs.pauses`);
- a write that fails otherwise or a model that fails is retried with a growing delay, up to
  ``daemon.max_attempts``, then fails;
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

from mattectl.condition_log import ConditionLog
from mattectl.config import Settings, WatchConfig
from mattectl.errors import (
    BackendError,
    InputChangedError,
    InputError,
    InvalidTransitionError,
    JobLogUnavailableError,
    ModelUnavailableError,
    OutputError,
    OutputNameError,
    RuleBlockedError,
)
from mattectl.fsutil import UnsafePathError, read_beneath
from mattectl.jobs import pauses
from mattectl.jobs.conditions import folder_wide, input_problem, output_problem
from mattectl.jobs.disposition import move_original
from mattectl.matting.naming import output_path
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, Recipe
from mattectl.matting.publish import publish_cutout
from mattectl.matting.stages import ms_since
from mattectl.store.manifest import DeliveryManifest
from mattectl.store.repository import Job, JobRepository, JobResult
from mattectl.thumbnails import ThumbnailStore

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
        paused: pauses.FolderPauses | None = None,
        job_log: ConditionLog | None = None,
        thumbnails: ThumbnailStore | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.repo = repo
        self.pipeline = pipeline
        self.settings = settings
        self._watches = {w.name: w for w in settings.watch}
        self._folders = folders
        self._wake = wake
        self._on_input_changed = on_input_changed
        self._paused = paused if paused is not None else pauses.FolderPauses()
        self._job_log = job_log or ConditionLog(logger, "job log busy", "job log writable again")
        self._thumbnails = thumbnails  # the studio page's, made from the cutout in memory
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
                self._job_log.failed(exc.reason)  # logged once, not once a second per worker
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
                written = write()
            except JobLogUnavailableError as exc:
                if self._stop.is_set():
                    raise
                self._job_log.failed(exc.reason)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self._job_log.cleared()
                return written

    def process(self, job: Job, *, db_ms: float = 0.0) -> Job:
        watch = self._watches.get(job.folder)
        if watch is None:
            return self._fail(job, None, f"folder '{job.folder}' is no longer configured",
                              JobResult())
        job = localised(job, watch)
        started = time.perf_counter()
        recipe = Recipe.of(watch)
        result = JobResult(model=None if recipe.rules else watch.model, db_ms=db_ms)
        need = 0  # bytes the output must find room for
        try:
            photo = Photo(job.rel_path, self._read_input(job, watch))
            cutout = self.pipeline.run(photo, recipe)
            need = len(cutout.data)
            result = replace(result, model=cutout.model, device=cutout.device,
                             precision=cutout.precision,
                             width=cutout.width, height=cutout.height,
                             decode_ms=cutout.decode_ms, inference_ms=cutout.inference_ms,
                             encode_ms=cutout.encode_ms, refine_ms=cutout.refine_ms,
                             confidence=cutout.confidence, decision=cutout.decision)
            written, digest, note = self._write_output(job, watch, cutout)
            result = replace(result, output_path=written, output_hash=digest, note=note,
                             total_ms=ms_since(started))
        except InputChangedError as exc:
            if (held := self._hold_for_input(job, watch)) is not None:
                return held  # the whole drop folder went away, not this photo
            return self._fail(job, None, str(exc), result)
        except (InputError, OutputNameError) as exc:
            if isinstance(exc, InputError) and \
                    (held := self._hold_for_input(job, watch)) is not None:
                return held  # the drop folder cannot be read, not only this photo
            return self._fail(job, watch, str(exc), result)
        except RETRYABLE as exc:
            if isinstance(exc, RuleBlockedError):  # keep the decision that says why
                result = replace(result, decision=exc.decision)
            if isinstance(exc, OutputError) and \
                    (held := self._hold_for_output(job, watch, exc, need)) is not None:
                return held
            return self._retry_or_fail(job, watch, str(exc), result)
        except InvalidTransitionError as exc:
            logger.warning("job %d was taken from this worker: %s", job.id, exc)
            return self.repo.get(job.id)
        except Exception as exc:
            logger.exception("job %d: unexpected error", job.id)
            return self._fail(job, watch, f"internal error: {type(exc).__name__}: {exc}", result)
        try:
            done = self._persist(lambda: self.repo.finish(job.id, self.worker_id, result))
        except InvalidTransitionError as exc:
            # Its lease ran out (this workstation was cut off from a shared job log): the job
            # is another worker's now, and so are its original and the recorded output name.
            logger.warning("job %d was taken from this worker before it finished (its lease "
                           "ran out?): %s", job.id, exc)
            return self.repo.get(job.id)
        logger.info("job %d done: %s -> %s (%s on %s, %.0f ms)", job.id, job.rel_path,
                    written or "skipped", cutout.model, cutout.device, result.total_ms)
        if self._thumbnails is not None and written is not None:
            self._thumbnails.make(done, cutout.data)
        if watch.on_success == "move" and watch.processed_dir is not None:
            done = self._move_original(done, watch.processed_dir)
        return done

    def _read_input(self, job: Job, watch: WatchConfig) -> bytes:
        # By descriptor from the folder's root, no link followed, never blocking: a FIFO, a
        # device or a link swapped in after queueing fails the job instead of hanging it.
        root, rel = _located(job, watch)
        try:
            data = read_beneath(root, rel)
        except UnsafePathError as exc:
            raise InputError(f"{job.rel_path}: {exc.strerror}; it was not read") from None
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
                      cutout: Cutout) -> tuple[Path | None, str | None, str | None]:
        """Publish the cutout atomically and note it in the folder's delivery manifest;
        returns (path written, SHA-256 of the bytes written, note)."""
        target = output_path(watch, job.rel_path, cutout.model, date.today(), cutout.options)
        digest = hashlib.sha256(cutout.data).hexdigest()
        previous = job.output_path
        policy = watch.on_collision
        if previous is not None and previous.parent == target.parent \
                and previous.suffix == target.suffix and _holds(watch, previous, job.output_hash):
            # Written by an earlier attempt of this very job (a crash, or `jobs retry`) and
            # still as it wrote it: rewritten in place. A file another job (or a person) has put
            # under that name since is not ours: the folder's collision policy applies.
            target, policy = previous, "overwrite"
        written = publish_cutout(
            cutout.data, target, root=watch.output, policy=policy, name=job.rel_path,
            before=lambda path: self._persist(
                lambda: self.repo.record_output(job.id, self.worker_id, path, digest)))
        if written is None:
            return None, None, f"skipped: {target} already exists (on_collision = 'skip')"
        return written, digest, _note_delivery(job, watch, written)

    # -- endings -------------------------------------------------------------------------------

    def _fail(self, job: Job, watch: WatchConfig | None, error: str, result: JobResult) -> Job:
        failed = self._persist(lambda: self.repo.fail(job.id, self.worker_id, error, result))
        logger.warning("job %d failed: %s", job.id, error)
        if watch is not None and watch.on_failure == "move" and watch.failed_dir is not None:
            failed = self._move_original(failed, watch.failed_dir)
        return failed

    def _hold_for_output(self, job: Job, watch: WatchConfig, exc: OutputError,
                         need: int) -> Job | None:
        """Pause the folder when its output folder itself cannot take the cutout (probed:
        a failure in one sub-folder is the job's own); None when it can."""
        if not folder_wide(exc) or (problem := output_problem(watch.output, need)) is None:
            return None
        # Resumed with room for two cutouts, so that one freed byte does not wake it in vain.
        return self._hold(job, watch, pauses.OUTPUT, problem,
                          lambda: output_problem(watch.output, 2 * need))

    def _hold_for_input(self, job: Job, watch: WatchConfig) -> Job | None:
        """Pause the folder when its drop folder cannot be read (or is gone); None when it
        can, and the failure was the photo's own."""
        if (problem := input_problem(watch.input)) is None:
            return None
        return self._hold(job, watch, pauses.INPUT, problem, lambda: input_problem(watch.input))

    def _hold(self, job: Job, watch: WatchConfig, cause: str, problem: str,
              probe: Callable[[], str | None]) -> Job:
        """Pause the folder, then give the job back to the queue without spending an attempt
        (paused first, so that no worker claims it again meanwhile)."""
        self._paused.hold(watch.name, cause, problem, probe)
        logger.warning("job %d held, not failed: %s", job.id, problem)
        return self._persist(lambda: self.repo.requeue(
            job.id, self.worker_id, f"held while folder {watch.name} is paused: {problem}",
            count_attempt=False))

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
        job = localised(job, self._watches[job.folder])  # (the row may hold another's path)
        if not job.input_path.exists():
            return job
        try:
            moved = move_original(*_located(job, self._watches[job.folder]), dest_root,
                                  job.rel_path)
        except (OSError, InputError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            note = (f"the original could not be moved to {dest_root}: {reason}; "
                    "it stays where it is")
            logger.error("job %d: %s", job.id, note)
            self._persist(lambda: self.repo.add_note(job.id, note))
            return job
        self._persist(lambda: self.repo.set_input_path(job.id, moved))
        return replace(job, input_path=moved)


def _holds(watch: WatchConfig, path: Path, digest: str | None) -> bool:
    """Whether the file at ``path`` (below the output folder) still holds the bytes whose hash
    is ``digest``; False when it is gone, unreadable, or no hash was recorded."""
    if digest is None:
        return False
    try:
        data = read_beneath(watch.output, path.relative_to(watch.output).as_posix())
    except (OSError, ValueError):
        return False
    return hashlib.sha256(data).hexdigest() == digest


def _note_delivery(job: Job, watch: WatchConfig, written: Path) -> str | None:
    """Append the delivery to the output folder's manifest, which outlives the job log; a
    failure is the job's note (the job log still records the delivery)."""
    manifest = DeliveryManifest(watch.output)
    try:
        manifest.append(job.folder, job.input_hash, written)
    except (OSError, ValueError) as exc:
        note = (f"the delivery could not be noted in {manifest.path}: "
                f"{getattr(exc, 'strerror', None) or exc}")
        logger.warning("job %d: %s", job.id, note)
        return note
    return None


def localised(job: Job, watch: WatchConfig) -> Job:
    """The job with its original's path on this workstation. A job queued by another
    workstation of a shared job log names the file where that one mounts the share; the folder
    is the same by name, and the file is found by its path below this workstation's drop
    folder."""
    roots = [d for d in (watch.input, watch.processed_dir, watch.failed_dir) if d is not None]
    if any(root in job.input_path.parents for root in roots):
        return job
    return replace(job, input_path=watch.input / job.rel_path)


def _located(job: Job, watch: WatchConfig) -> tuple[Path, str]:
    """The folder of ``watch`` that holds the job's file (the drop folder, or the processed or
    failed folder it was moved to), and the file's path below it."""
    roots = [d for d in (watch.input, watch.processed_dir, watch.failed_dir) if d is not None]
    for root in sorted(roots, key=lambda d: len(d.parts), reverse=True):  # the nearest first
        if root in job.input_path.parents:
            return root, job.input_path.relative_to(root).as_posix()
    raise InputError(f"{job.rel_path}: {job.input_path} is not inside the folder's drop, "
                     "processed or failed folder (was the folder's configuration changed?)")
