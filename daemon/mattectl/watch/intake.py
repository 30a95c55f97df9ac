"""The intake loop: file events and scans in, queued jobs out.

Paths arrive from watchdog's threads through :meth:`Intake.notify`; the start-up scan and the
periodic rescan are asked for with :meth:`Intake.request_scan` and walked by the intake thread
itself. That one thread filters paths, waits until each file is stable, hashes it and queues one
job per content and folder. A file is never read before it is stable: unchanged for the folder's
quiet period, or (``release_on_close``) closed by its writer, or renamed into place, with the
bytes of a whole image (:mod:`mattectl.watch.complete`), which spares the wait.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mattectl.condition_log import ConditionLog
from mattectl.config import WatchConfig
from mattectl.errors import JobLogUnavailableError
from mattectl.fsutil import inside, open_regular
from mattectl.store.manifest import DeliveryManifest
from mattectl.store.repository import Delivery, Job, JobRepository, NewJob
from mattectl.store.status import JobStatus
from mattectl.watch.complete import whole_image
from mattectl.watch.filters import ignore_reason
from mattectl.watch.stability import FileState, StabilityTracker

logger = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20
# Paths waiting for the intake thread. Past this, events are dropped and a full scan is done
# instead (inotify does the same on overflow), so a flood never grows memory without bound.
INBOX_LIMIT = 10_000


def hash_file(path: Path) -> str:
    """The content hash of the regular file ``path``. Neither a FIFO swapped in since it was
    found stable (it would block) nor a symbolic link in its place is opened: UnsafePathError."""
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unreadable_key(path: Path) -> str:
    """Stands in for the content hash of a file we may not read; the worker reports why."""
    return hashlib.sha256(b"unreadable\0" + os.fsencode(path)).hexdigest()


def file_state(path: Path) -> FileState | None:
    """Size and mtime of a regular file (following a link), or None."""
    try:
        st = os.stat(path)
    except OSError:  # gone, dangling or looping link, no permission on the folder
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileState(st.st_size, st.st_mtime_ns)


@dataclass
class _Folder:
    watch: WatchConfig
    tracker: StabilityTracker
    excluded: tuple[Path, ...]  # processed/failed folders that live inside the drop folder
    manifest: DeliveryManifest  # what was delivered to the output folder, whatever the log says


class Intake:
    def __init__(self, watches: list[WatchConfig], repo: JobRepository,
                 on_queued: Callable[[Job], None], *,
                 clock: Callable[[], float] = time.monotonic,
                 job_log: ConditionLog | None = None) -> None:
        self._folders = {
            w.name: _Folder(w, StabilityTracker(w.stability_s), tuple(
                d for d in (w.processed_dir, w.failed_dir) if d is not None and inside(d, w.input)
            ), DeliveryManifest(w.output))
            for w in watches
        }
        self._repo = repo
        self._on_queued = on_queued
        self._clock = clock
        # A job log that cannot be written (a full state disk): one line, not one per file.
        self._job_log = job_log or ConditionLog(logger, "job log busy", "job log writable again")
        self._inbox: queue.Queue[tuple[str, Path, bool]] = queue.Queue(INBOX_LIMIT)
        self._scan_requests: set[str | None] = set()
        self._scan_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._known: dict[tuple[str, str], FileState] = {}
        self._warned: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- called from any thread ----------------------------------------------------------------

    def notify(self, folder: str, path: Path, finished: bool = False) -> None:
        """``path`` of drop folder ``folder`` may have changed; ``finished`` when its writer
        closed it after writing or renamed it into place (it may then be taken at once)."""
        try:
            self._inbox.put_nowait((folder, path, finished))
        except queue.Full:
            self.request_scan(folder)
        self._wake.set()

    def request_scan(self, folder: str | None = None) -> None:
        """Ask the intake thread to look at every file of one (or every) drop folder."""
        with self._scan_lock:
            self._scan_requests.add(folder)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Files seen but not yet stable."""
        return sum(len(f.tracker) for f in self._folders.values())

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mattectl-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the intake thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("intake tick failed; continuing")
            self._wake.wait(self._sleep_time())
            self._wake.clear()

    def _sleep_time(self) -> float:
        deadlines = [d for f in self._folders.values() if (d := f.tracker.next_deadline())]
        if not deadlines:
            return 1.0
        return min(1.0, max(0.05, min(deadlines) - self._clock()))

    def tick(self) -> list[Job]:
        """Take in what was notified or scanned, then queue every file that has become stable."""
        now = self._clock()
        with self._scan_lock:
            requests, self._scan_requests = self._scan_requests, set()
        for f in self._folders.values():
            if None in requests or f.watch.name in requests:
                self._scan(f, now)
        while True:
            try:
                folder, path, finished = self._inbox.get_nowait()
            except queue.Empty:
                break
            f = self._folders.get(folder)
            if f is None:
                continue
            if path.is_dir() and not path.is_symlink():
                for child in self._walk(f, path):
                    self._consider(f, child, now)
            else:
                self._consider(f, path, now, finished)
        queued = []
        for f in self._folders.values():
            for path in f.tracker.due(now):
                state = file_state(path)
                if state is None:
                    f.tracker.discard(path)
                elif f.tracker.settle(path, state, now):
                    job = self._register(f, path, state, now)
                    if job is not None:
                        queued.append(job)
        return queued

    def _scan(self, f: _Folder, now: float) -> int:
        """Consider every file of a drop folder; forget what is no longer there."""
        seen: set[str] = set()
        for path in self._walk(f, f.watch.input):
            seen.add(str(path))
            self._consider(f, path, now)
        name = f.watch.name
        for key in [k for k in self._known if k[0] == name and k[1] not in seen]:
            del self._known[key]
        self._warned &= seen
        return len(seen)

    def _walk(self, f: _Folder, top: Path) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False,
                                                    onerror=self._walk_error):
            folder = Path(dirpath)
            if not f.watch.recursive and folder != f.watch.input:
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if not d.startswith(".")
                           and folder / d not in f.excluded]
            for name in filenames:
                yield folder / name

    def _walk_error(self, exc: OSError) -> None:
        logger.warning("cannot scan %s: %s", exc.filename, exc.strerror)

    def _rel_path(self, f: _Folder, path: Path) -> str | None:
        """The path relative to the drop folder if it is a photo to consider, else None."""
        try:
            rel = path.relative_to(f.watch.input)
        except ValueError:
            return None
        if not rel.parts or (not f.watch.recursive and len(rel.parts) > 1):
            return None
        if any(d == path or d in path.parents for d in f.excluded):
            return None
        if ignore_reason(rel, f.watch.extensions) is not None:
            return None
        if path.is_symlink():
            if not path.exists():
                self._warn_once(str(path), "ignored %s: a symbolic link to nothing, or a loop",
                                path)
                return None
            if not inside(path, f.watch.input):
                self._warn_once(str(path), "ignored %s: a symbolic link that points outside %s",
                                path, f.watch.input)
                return None
        return rel.as_posix()

    def _consider(self, f: _Folder, path: Path, now: float, finished: bool = False) -> None:
        if self._rel_path(f, path) is None:
            return
        state = file_state(path)
        if state is None:
            f.tracker.discard(path)
            return
        if self._known.get((f.watch.name, str(path))) == state:
            return
        # Closed (or renamed in) by its writer and provably whole: no quiet period to wait out.
        # The state is read again when it is taken, so a file written since still waits.
        finished = finished and f.watch.release_on_close and not f.watch.polling \
            and whole_image(path)
        f.tracker.observe(path, state, now, finished=finished)

    def _register(self, f: _Folder, path: Path, state: FileState, now: float) -> Job | None:
        name = f.watch.name
        rel = self._rel_path(f, path)
        if rel is None:
            return None
        try:
            if self._repo.find_known(name, path, state.size, state.mtime_ns) is not None:
                self._known[(name, str(path))] = state
                return None
            if (cutout := self._delivered(f, path, state)) is not None:
                return self._skip_delivered(f, path, rel, state, cutout)
            try:
                digest = hash_file(path)
            except FileNotFoundError:
                return None
            except OSError as exc:
                logger.warning("cannot read %s (%s); queued so the job records why", path,
                               exc.strerror)
                digest = unreadable_key(path)
            if file_state(path) != state:  # still changing after all: wait again
                f.tracker.observe(path, file_state(path) or state, now)
                return None
            if (cutout := self._delivered(f, path, state, digest)) is not None:
                return self._skip_delivered(f, path, rel, state, cutout)
            job, created = self._repo.add(NewJob(name, path, rel, digest, state.size,
                                                 state.mtime_ns))
        except JobLogUnavailableError as exc:
            self._job_log.failed(exc.reason)
            f.tracker.observe(path, state, now)
            return None
        except Exception:
            logger.exception("could not queue %s; will try again", path)
            f.tracker.observe(path, state, now)
            return None
        self._known[(name, str(path))] = state
        if created:
            logger.info("queued job %d: %s (%s)", job.id, rel, name)
        elif job.status == JobStatus.FAILED:
            job = self._requeue_failed(job, path)
        else:
            if job.input_path != path:
                logger.info("skipped %s: same content as job %d (%s, %s)", rel, job.id,
                            job.input_path, job.status)
            return None
        self._on_queued(job)
        return job

    def _delivered(self, f: _Folder, path: Path, state: FileState,
                   digest: str | None = None) -> Path | None:
        """The cutout of an earlier delivery of this photo to this folder, if it still exists:
        without ``digest``, of exactly this file (path, size, mtime: nothing to hash); with it,
        of this content, from the job log or else from the output folder's manifest (which
        outlives the log; what it teaches is written back to the log)."""
        name = f.watch.name
        if digest is None:
            known = self._repo.find_delivered(name, path, state.size, state.mtime_ns)
            return known.output_path if known and known.output_path.exists() else None
        known = self._repo.delivered(name, digest)
        if known is not None and known.output_path.exists():
            return known.output_path
        cutout = f.manifest.lookup(name, digest)
        if cutout is None or not cutout.exists():
            return None
        self._repo.remember_delivery(Delivery(name, digest, path, state.size, state.mtime_ns,
                                              cutout))
        return cutout

    def _skip_delivered(self, f: _Folder, path: Path, rel: str, state: FileState,
                        cutout: Path) -> None:
        """Not queued: this content was delivered to this folder and its cutout is still
        there (a cutout the studio deleted is made again)."""
        self._known[(f.watch.name, str(path))] = state
        logger.info("skipped %s (%s): already delivered as %s", rel, f.watch.name, cutout)
        return None

    def _requeue_failed(self, job: Job, path: Path) -> Job:
        """The same photo was dropped again after its job failed: try it again."""
        self._repo.set_input_path(job.id, path)
        job = self._repo.retry(job.id)
        logger.info("re-queued failed job %d: %s was dropped again", job.id, path)
        return job

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)
