"""JobRepository: the only code that opens database sessions. Dataclasses in, dataclasses out.

Every status change goes through :meth:`JobRepository._transition`, which checks the transition
table and repeats the check in the UPDATE's WHERE clause, so two workers (or two workstations on
one PostgreSQL database) can never both claim, finish or fail the same job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mattectl.errors import InvalidTransitionError, JobLogUnavailableError, JobNotFoundError
from mattectl.report import DaemonReport
from mattectl.store import database as database_file
from mattectl.store.engine import (
    check_version,
    job_log_errors,
    make_engine,
    migrate,
    sqlite_url,
)
from mattectl.store.models import DaemonRow, DeliveryRow, HostRow, JobRow, utcnow
from mattectl.store.status import TERMINAL, JobStatus, sources

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewJob:
    folder: str
    input_path: Path
    rel_path: str
    input_hash: str
    input_size: int
    input_mtime_ns: int


@dataclass(frozen=True)
class JobResult:
    """What a worker measured and wrote; any field may be missing when a job fails early."""

    model: str | None = None
    device: str | None = None
    precision: str | None = None  # the number format the model ran in
    output_path: Path | None = None
    output_hash: str | None = None  # SHA-256 of the bytes published at output_path
    width: int | None = None
    height: int | None = None
    decode_ms: float | None = None
    inference_ms: float | None = None
    encode_ms: float | None = None
    refine_ms: float | None = None  # the edges' share of encode_ms
    confidence: float | None = None  # 0..1, how sure the alpha is
    db_ms: float | None = None
    total_ms: float | None = None
    decision: dict[str, Any] | None = None
    note: str | None = None  # e.g. the original could not be moved: kept on a done job

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("model", "device", "precision", "width", "height", "decode_ms",
                         "inference_ms", "encode_ms", "refine_ms", "confidence", "db_ms",
                         "total_ms")
            if getattr(self, name) is not None
        }
        if self.output_path is not None:
            out["output_path"] = str(self.output_path)
            out["output_hash"] = self.output_hash
        if self.decision is not None:
            out["decision"] = json.dumps(self.decision, sort_keys=True)
        return out


@dataclass(frozen=True)
class Job:
    id: int
    folder: str
    input_path: Path
    rel_path: str
    input_hash: str
    input_size: int
    input_mtime_ns: int
    status: JobStatus
    attempts: int
    model: str | None
    device: str | None
    precision: str | None
    decision: dict[str, Any] | None
    decode_ms: float | None
    inference_ms: float | None
    encode_ms: float | None
    refine_ms: float | None
    confidence: float | None
    db_ms: float | None
    total_ms: float | None
    width: int | None
    height: int | None
    output_path: Path | None
    output_hash: str | None
    error: str | None
    claimed_by: str | None
    created_at: datetime
    updated_at: datetime
    available_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_until: datetime | None = None  # a running job's lease (see JobRepository.claim)

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id, folder=row.folder, input_path=Path(row.input_path), rel_path=row.rel_path,
            input_hash=row.input_hash, input_size=row.input_size,
            input_mtime_ns=row.input_mtime_ns, status=JobStatus(row.status),
            attempts=row.attempts, model=row.model, device=row.device, precision=row.precision,
            decision=json.loads(row.decision) if row.decision else None,
            decode_ms=row.decode_ms, inference_ms=row.inference_ms, encode_ms=row.encode_ms,
            refine_ms=row.refine_ms, confidence=row.confidence,
            db_ms=row.db_ms, total_ms=row.total_ms, width=row.width, height=row.height,
            output_path=Path(row.output_path) if row.output_path else None,
            output_hash=row.output_hash, error=row.error,
            claimed_by=row.claimed_by, created_at=row.created_at, updated_at=row.updated_at,
            available_at=row.available_at, started_at=row.started_at,
            finished_at=row.finished_at, lease_until=row.lease_until,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


@dataclass(frozen=True)
class Delivery:
    """A photo (folder and content) whose cutout was delivered, and where."""

    folder: str
    input_hash: str
    input_path: Path
    input_size: int
    input_mtime_ns: int
    output_path: Path
    output_hash: str | None = None
    job_id: int | None = None
    delivered_at: datetime | None = None
    id: int | None = None

    @classmethod
    def from_row(cls, row: DeliveryRow) -> Delivery:
        return cls(row.folder, row.input_hash, Path(row.input_path), row.input_size,
                   row.input_mtime_ns, Path(row.output_path), row.output_hash, row.job_id,
                   row.delivered_at, row.id)

    @classmethod
    def of(cls, job: Job) -> Delivery:
        assert job.output_path is not None
        return cls(job.folder, job.input_hash, job.input_path, job.input_size,
                   job.input_mtime_ns, job.output_path, job.output_hash, job.id,
                   job.finished_at)


@dataclass(frozen=True)
class DaemonInfo:
    instance: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    report: DaemonReport = field(default_factory=DaemonReport)


@dataclass(frozen=True)
class HostInfo:
    """A workstation on the job log (the hosts table)."""

    name: str
    instance: str
    version: str
    device: str
    models: list[str]
    workers: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True)
class InferenceSample:
    model: str
    device: str | None
    inference_ms: float
    width: int | None
    height: int | None


DEFAULT_LEASE_S = 60.0


class JobRepository:
    def __init__(self, engine: Engine, path: Path | None = None, *,
                 lease_s: float = DEFAULT_LEASE_S) -> None:
        self.engine = engine
        self.path = path  # the SQLite file, None for a server database
        self.lease_s = lease_s  # how long a claim holds before its daemon must renew it
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def server(self) -> bool:
        """Whether the job log is a server database (PostgreSQL) that workstations share."""
        return self.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, database: Path | str, *, writer: bool = True, verify: bool = False,
             lease_s: float = DEFAULT_LEASE_S, upgrade: bool = True) -> JobRepository:
        """Open (and for a writer, create or migrate) the job log; a Path means SQLite.

        A writer creates a new SQLite database only where none was ever created; a lost, emptied
        or corrupt one raises JobLogDamagedError (see :mod:`mattectl.store.database`), as does
        one that fails ``PRAGMA quick_check`` with ``verify`` (the daemon's start). A reader
        never creates a file."""
        path = database if isinstance(database, Path) else None
        if path is None:
            engine = make_engine(str(database), writer=writer)
        else:
            if writer:
                path.parent.mkdir(parents=True, exist_ok=True)
            if not database_file.check_file(path):
                if not writer:
                    raise JobLogUnavailableError(f"no job database at {path}")
                database_file.create(path)
            engine = make_engine(sqlite_url(path), writer=writer, must_exist=True)
        try:
            with job_log_errors(path):
                if writer:
                    migrate(engine, upgrade=upgrade)
                else:
                    check_version(engine)
                if verify and path is not None:
                    database_file.verify(path)
            if writer and path is not None:
                database_file.mark_created(path)  # a database older than the marker
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, path, lease_s=lease_s)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Session]:
        """One transaction; every method opens its session here, so that a locked or unreadable
        database leaves the repository as JobLogUnavailableError (see ``job_log_errors``)."""
        with job_log_errors(self.path), self._sessions.begin() as session:
            yield session

    # -- intake ------------------------------------------------------------------------------

    def add(self, new: NewJob) -> tuple[Job, bool]:
        """Queue a job; when the folder already has a job for this content, return that one."""
        row = JobRow(
            folder=new.folder, input_path=str(new.input_path), rel_path=new.rel_path,
            input_hash=new.input_hash, input_size=new.input_size,
            input_mtime_ns=new.input_mtime_ns, status=JobStatus.QUEUED, attempts=0,
        )
        try:
            with self._begin() as session:
                session.add(row)
                session.flush()
                return Job.from_row(row), True
        except IntegrityError:
            with self._begin() as session:
                existing = session.scalars(select(JobRow).where(
                    JobRow.folder == new.folder, JobRow.input_hash == new.input_hash)).one()
                return Job.from_row(existing), False

    def find_known(self, folder: str, input_path: Path, size: int, mtime_ns: int) -> Job | None:
        """A job for exactly this file (path, size and mtime), so a rescan need not hash it."""
        with self._begin() as session:
            row = session.scalars(select(JobRow).where(
                JobRow.folder == folder, JobRow.input_path == str(input_path),
                JobRow.input_size == size, JobRow.input_mtime_ns == mtime_ns,
            ).order_by(JobRow.id.desc()).limit(1)).first()
            return Job.from_row(row) if row else None

    # -- status changes ------------------------------------------------------------------------

    def _transition(self, session: Session, job_id: int, target: JobStatus,
                    values: dict[str, Any], *, worker_id: str | None = None,
                    only_from: frozenset[JobStatus] | None = None) -> Job:
        """Move a job to ``target`` from any allowed status (narrowed to ``only_from``)."""
        from_ = sources(target) if only_from is None else sources(target) & only_from
        conditions = [JobRow.id == job_id, JobRow.status.in_(from_)]
        if worker_id is not None:
            conditions.append(JobRow.claimed_by == worker_id)
        now = utcnow()
        result = session.execute(
            update(JobRow).where(*conditions).values(status=target, updated_at=now, **values)
        )
        if result.rowcount != 1:
            current = session.get(JobRow, job_id)
            if current is None:
                raise JobNotFoundError(f"no job {job_id}")
            if JobStatus(current.status) not in from_:
                why = "not allowed" if only_from is None else \
                    f"not allowed here (only from {', '.join(sorted(from_))})"
            else:
                why = f"claimed by {current.claimed_by}, not {worker_id}"
            raise InvalidTransitionError(
                f"job {job_id}: {current.status} -> {target} {why}")
        row = session.get(JobRow, job_id, populate_existing=True)
        assert row is not None
        return Job.from_row(row)

    def _due(self, folders: Collection[str], now: datetime):
        # Fresh jobs first: one that was interrupted or failed before (possibly the photo that
        # crashed the daemon) waits behind them instead of blocking them; then the oldest.
        return select(JobRow.id).where(
            JobRow.status == JobStatus.QUEUED, JobRow.available_at <= now,
            JobRow.folder.in_(list(folders)),
        ).order_by(JobRow.attempts, JobRow.id).limit(1)

    def _claimed(self, worker_id: str, now: datetime) -> dict[str, Any]:
        return {"claimed_by": worker_id, "attempts": JobRow.attempts + 1, "started_at": now,
                "finished_at": None, "lease_until": now + timedelta(seconds=self.lease_s)}

    def claim(self, worker_id: str, folders: Collection[str]) -> Job | None:
        """Atomically take the next queued job that is due (fewest attempts, then oldest), with
        a lease of ``lease_s`` that :meth:`renew_leases` extends.

        On PostgreSQL the row is locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` in the
        claiming transaction: claimers on every workstation take different jobs without waiting
        for each other. SQLite (one writer at a time) uses the conditional UPDATE."""
        if not folders:
            return None
        if self.server:
            with self._begin() as session:
                now = utcnow()
                job_id = session.scalar(self._due(folders, now).with_for_update(
                    skip_locked=True))
                if job_id is None:
                    return None
                return self._transition(session, job_id, JobStatus.RUNNING,
                                        self._claimed(worker_id, now))
        for _ in range(5):  # another worker may win the conditional UPDATE: take the next one
            with self._begin() as session:
                now = utcnow()
                job_id = session.scalar(self._due(folders, now))
                if job_id is None:
                    return None
                try:
                    return self._transition(session, job_id, JobStatus.RUNNING,
                                            self._claimed(worker_id, now))
                except InvalidTransitionError:
                    continue
        return None

    def finish(self, job_id: int, worker_id: str, result: JobResult) -> Job:
        """Mark the job done; a cutout it wrote is remembered as delivered in the same
        transaction (see :meth:`delivered`), so the two never disagree."""
        with self._begin() as session:
            done = self._transition(session, job_id, JobStatus.DONE, {
                **result.values(), "error": result.note, "finished_at": utcnow(),
                "lease_until": None,
            }, worker_id=worker_id)
            if done.output_path is not None:
                self._remember(session, Delivery.of(done))
            return done

    def fail(self, job_id: int, worker_id: str | None, error: str,
             result: JobResult | None = None) -> Job:
        values = (result or JobResult()).values()
        with self._begin() as session:
            return self._transition(session, job_id, JobStatus.FAILED, {
                **values, "error": error, "finished_at": utcnow(), "lease_until": None,
            }, worker_id=worker_id)

    def requeue(self, job_id: int, worker_id: str, error: str | None, delay_s: float = 0.0,
                *, count_attempt: bool = True) -> Job:
        """Put a running job back in the queue, due after ``delay_s``.

        ``count_attempt=False`` gives the attempt back (a shutdown is not the job's fault).
        """
        values: dict[str, Any] = {
            "error": error, "claimed_by": None, "lease_until": None,
            "available_at": utcnow() + timedelta(seconds=delay_s),
        }
        if not count_attempt:
            values["attempts"] = JobRow.attempts - 1
        with self._begin() as session:
            return self._transition(session, job_id, JobStatus.QUEUED, values,
                                    worker_id=worker_id)

    def reap(self, host: str, max_attempts: int) -> tuple[list[int], list[int]]:
        """Deal with jobs left running by an earlier daemon on this host (it crashed, was
        killed, or hung and was restarted by systemd's watchdog): re-queue them, or fail those
        that were interrupted ``max_attempts`` times, so one photo that kills the model cannot
        crash the daemon forever. Jobs claimed by other hosts are theirs to reap.

        Returns ``(re-queued ids, failed ids)``."""
        with self._begin() as session:
            rows = session.scalars(select(JobRow).where(
                JobRow.status == JobStatus.RUNNING,
                # (autoescape: a '_' or '%' in a host name is no wildcard for a neighbour's)
                JobRow.claimed_by.startswith(f"{host}:", autoescape=True),
            )).all()
            requeued, failed = [], []
            for row in rows:
                previous = row.claimed_by
                if row.attempts >= max_attempts:
                    self._transition(session, row.id, JobStatus.FAILED, {
                        "error": f"the daemon stopped during this job {row.attempts} times "
                                 "(a crash or a hang while processing it?); not retried",
                        "finished_at": utcnow(), "lease_until": None,
                    })
                    failed.append(row.id)
                    continue
                self._transition(session, row.id, JobStatus.QUEUED, {
                    "claimed_by": None, "available_at": utcnow(), "lease_until": None,
                    "error": f"re-queued at start-up: left running by {previous}",
                })
                requeued.append(row.id)
            return requeued, failed

    # -- leases --------------------------------------------------------------------------------

    def renew_leases(self, instance: str) -> int:
        """Extend the lease of every job the daemon ``instance`` (its workers' ids begin with
        ``instance:``) is running, by ``lease_s`` from now; returns how many."""
        with self._begin() as session:
            return session.execute(update(JobRow).where(
                JobRow.status == JobStatus.RUNNING,
                JobRow.claimed_by.startswith(f"{instance}:", autoescape=True),
            ).values(lease_until=utcnow() + timedelta(seconds=self.lease_s))).rowcount

    def expire_leases(self, max_attempts: int) -> tuple[list[int], list[int]]:
        """Queue again the running jobs whose lease ran out (their workstation died, hung or lost
        the network), the attempt counted; fail those that have had ``max_attempts``. Any
        daemon may call it: each UPDATE repeats the expiry in its WHERE clause, so a lease
        renewed meanwhile, or a job another daemon took back first, is left alone.

        Returns ``(re-queued ids, failed ids)``."""
        requeued: list[int] = []
        failed: list[int] = []
        with self._begin() as session:
            now = utcnow()
            rows = session.execute(select(JobRow.id, JobRow.claimed_by, JobRow.attempts).where(
                JobRow.status == JobStatus.RUNNING, JobRow.lease_until < now)).all()
            for job_id, holder, attempts in rows:
                give_up = attempts >= max_attempts
                why = f"the lease of {holder} ran out (its workstation stopped answering)"
                values: dict[str, Any] = {
                    "status": JobStatus.FAILED if give_up else JobStatus.QUEUED,
                    "claimed_by": None, "lease_until": None, "updated_at": now,
                    "error": f"{why} {attempts} times; not retried" if give_up else
                             f"re-queued: {why}",
                }
                values.update({"finished_at": now} if give_up else {"available_at": now})
                done = session.execute(update(JobRow).where(
                    JobRow.id == job_id, JobRow.status == JobStatus.RUNNING,
                    JobRow.claimed_by == holder, JobRow.lease_until < now,
                ).values(**values)).rowcount
                if done == 1:
                    (failed if give_up else requeued).append(job_id)
        return requeued, failed

    def prune(self, older_than: datetime) -> int:
        """Delete finished (done or failed) job rows that finished before ``older_than``."""
        with self._begin() as session:
            result = session.execute(delete(JobRow).where(
                JobRow.status.in_([JobStatus.DONE, JobStatus.FAILED]),
                JobRow.finished_at < older_than,
            ))
            return result.rowcount

    def retry(self, job_id: int) -> Job:
        """Queue a failed (or done) job again, with a fresh count of attempts. A queued or
        running job is left alone (InvalidTransitionError): a worker may be on it."""
        with self._begin() as session:
            return self._transition(session, job_id, JobStatus.QUEUED, {
                "attempts": 0, "error": None, "claimed_by": None, "available_at": utcnow(),
            }, only_from=TERMINAL)

    def retry_failed(self, folder: str | None = None) -> list[int]:
        with self._begin() as session:
            query = select(JobRow.id).where(JobRow.status == JobStatus.FAILED)
            if folder:
                query = query.where(JobRow.folder == folder)
            ids = list(session.scalars(query.order_by(JobRow.id)))
            for job_id in ids:
                self._transition(session, job_id, JobStatus.QUEUED, {
                    "attempts": 0, "error": None, "claimed_by": None, "available_at": utcnow(),
                })
            return ids

    def record_output(self, job_id: int, worker_id: str, path: Path,
                      output_hash: str | None = None) -> None:
        """Note the output name a running job is about to publish, and the hash of the bytes,
        before publishing it: after a crash, or for `jobs retry`, the file under this name is
        its own only while it still holds those bytes."""
        with self._begin() as session:
            result = session.execute(update(JobRow).where(
                JobRow.id == job_id, JobRow.status == JobStatus.RUNNING,
                JobRow.claimed_by == worker_id,
            ).values(output_path=str(path), output_hash=output_hash, updated_at=utcnow()))
            if result.rowcount != 1:
                raise InvalidTransitionError(f"job {job_id} is no longer claimed by {worker_id}")

    def set_input_path(self, job_id: int, path: Path) -> None:
        """Record where the original went after it was moved (processed/failed folder)."""
        with self._begin() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(
                input_path=str(path), updated_at=utcnow()))

    def add_note(self, job_id: int, note: str) -> None:
        """Append ``note`` to the job's error text (a done job's note: what went wrong after)."""
        with self._begin() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(
                error=func.coalesce(JobRow.error + "; ", "") + note, updated_at=utcnow()))

    # -- deliveries ----------------------------------------------------------------------------

    def _remember(self, session: Session, delivery: Delivery) -> None:
        row = session.scalars(select(DeliveryRow).where(
            DeliveryRow.folder == delivery.folder,
            DeliveryRow.input_hash == delivery.input_hash)).first()
        if row is None:
            row = DeliveryRow(folder=delivery.folder, input_hash=delivery.input_hash)
            session.add(row)
        row.input_path = str(delivery.input_path)
        row.input_size = delivery.input_size
        row.input_mtime_ns = delivery.input_mtime_ns
        row.output_path = str(delivery.output_path)
        row.output_hash = delivery.output_hash
        row.job_id = delivery.job_id
        row.delivered_at = delivery.delivered_at or utcnow()

    def remember_delivery(self, delivery: Delivery) -> None:
        """Record (or update) a delivery learned elsewhere: from an output folder's manifest
        after the job log was lost."""
        with self._begin() as session:
            self._remember(session, delivery)

    def delivered(self, folder: str, input_hash: str) -> Delivery | None:
        """The delivery of this content in this folder, whether its job row is kept or not."""
        with self._begin() as session:
            row = session.scalars(select(DeliveryRow).where(
                DeliveryRow.folder == folder, DeliveryRow.input_hash == input_hash)).first()
            return Delivery.from_row(row) if row else None

    def find_delivered(self, folder: str, input_path: Path, size: int,
                       mtime_ns: int) -> Delivery | None:
        """A delivery of exactly this file (path, size and mtime), so a rescan need not hash it."""
        with self._begin() as session:
            row = session.scalars(select(DeliveryRow).where(
                DeliveryRow.folder == folder, DeliveryRow.input_path == str(input_path),
                DeliveryRow.input_size == size, DeliveryRow.input_mtime_ns == mtime_ns,
            ).order_by(DeliveryRow.id.desc()).limit(1)).first()
            return Delivery.from_row(row) if row else None

    def deliveries_before(self, older_than: datetime, *, after_id: int = 0,
                          limit: int = 500) -> list[Delivery]:
        """Deliveries made before ``older_than`` whose job row is gone, by id from ``after_id``
        (a page at a time, for pruning). (The job is found by folder and content: SQLite gives
        a pruned job's id to the next new job.)"""
        with self._begin() as session:
            rows = session.scalars(select(DeliveryRow).where(
                DeliveryRow.delivered_at < older_than, DeliveryRow.id > after_id,
                ~select(JobRow.id).where(JobRow.folder == DeliveryRow.folder,
                                         JobRow.input_hash == DeliveryRow.input_hash).exists(),
            ).order_by(DeliveryRow.id).limit(limit))
            return [Delivery.from_row(row) for row in rows]

    def forget_deliveries(self, ids: Collection[int]) -> int:
        if not ids:
            return 0
        with self._begin() as session:
            return session.execute(delete(DeliveryRow).where(DeliveryRow.id.in_(list(ids)))
                                   ).rowcount

    # -- reading -------------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._begin() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise JobNotFoundError(f"no job {job_id}")
            return Job.from_row(row)

    def list(self, *, status: Iterable[JobStatus] | None = None, folder: str | None = None,
             limit: int = 50) -> list[Job]:
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if status:
            query = query.where(JobRow.status.in_(list(status)))
        if folder:
            query = query.where(JobRow.folder == folder)
        with self._begin() as session:
            return [Job.from_row(row) for row in session.scalars(query)]

    def search(self, *, name: str | None = None, folder: str | None = None,
               status: Iterable[JobStatus] | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 50) -> list[Job]:
        """Jobs whose file name holds ``name`` (any case), queued from ``since`` up to
        ``until``, newest first; the other filters as in :meth:`list`."""
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if name:
            pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_") + "%"
            query = query.where(JobRow.rel_path.ilike(pattern, escape="\\"))
        if status:
            query = query.where(JobRow.status.in_(list(status)))
        if folder:
            query = query.where(JobRow.folder == folder)
        if since is not None:
            query = query.where(JobRow.created_at >= since)
        if until is not None:
            query = query.where(JobRow.created_at < until)
        with self._begin() as session:
            return [Job.from_row(row) for row in session.scalars(query)]

    def output_hashes(self, ids: Collection[int]) -> dict[int, str | None]:
        """``{job id: hash of its cutout}`` for those of ``ids`` that still have a row."""
        wanted = sorted(ids)
        out: dict[int, str | None] = {}
        with self._begin() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(select(JobRow.id, JobRow.output_hash).where(
                    JobRow.id.in_(wanted[start:start + 500])))
                out.update((job_id, digest) for job_id, digest in rows)
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """``{folder: {status: count}}``; queued jobs waiting for a retry count as ``waiting``."""
        now = utcnow()
        out: dict[str, dict[str, int]] = {}
        with self._begin() as session:
            for folder, status, count in session.execute(
                select(JobRow.folder, JobRow.status, func.count()).group_by(
                    JobRow.folder, JobRow.status)):
                out.setdefault(folder, {})[str(status)] = count
            for folder, count in session.execute(
                select(JobRow.folder, func.count()).where(
                    JobRow.status == JobStatus.QUEUED, JobRow.available_at > now,
                ).group_by(JobRow.folder)):
                out.setdefault(folder, {})["waiting"] = count
        return out

    def last_done(self) -> Job | None:
        with self._begin() as session:
            row = session.scalars(select(JobRow).where(JobRow.status == JobStatus.DONE)
                                  .order_by(JobRow.finished_at.desc()).limit(1)).first()
            return Job.from_row(row) if row else None

    def recent_inference(self, limit: int = 1000) -> list[InferenceSample]:
        """The latest measured inference times, newest first."""
        with self._begin() as session:
            rows = session.execute(
                select(JobRow.model, JobRow.device, JobRow.inference_ms, JobRow.width,
                       JobRow.height)
                .where(JobRow.status == JobStatus.DONE, JobRow.inference_ms.is_not(None))
                .order_by(JobRow.finished_at.desc()).limit(limit))
            return [InferenceSample(*row) for row in rows]

    # -- daemon instances ----------------------------------------------------------------------

    def register_daemon(self, instance: str, host: str, pid: int, version: str,
                        report: DaemonReport) -> None:
        now = utcnow()
        with self._begin() as session:
            session.merge(DaemonRow(instance=instance, host=host, pid=pid, version=version,
                                    started_at=now, heartbeat_at=now, stopped_at=None,
                                    info=report.to_json()))

    def heartbeat(self, instance: str, report: DaemonReport | None = None) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if report is not None:
            values["info"] = report.to_json()
        with self._begin() as session:
            session.execute(update(DaemonRow).where(DaemonRow.instance == instance)
                            .values(**values))

    def daemon_stopped(self, instance: str) -> None:
        with self._begin() as session:
            session.execute(update(DaemonRow).where(DaemonRow.instance == instance)
                            .values(stopped_at=utcnow()))

    def daemons(self) -> list[DaemonInfo]:
        """Known daemon instances, the most recent heartbeat first."""
        with self._begin() as session:
            rows = session.scalars(select(DaemonRow).order_by(DaemonRow.heartbeat_at.desc()))
            return [DaemonInfo(r.instance, r.host, r.pid, r.version, r.started_at,
                               r.heartbeat_at, r.stopped_at, DaemonReport.from_json(r.info))
                    for r in rows]

    # -- workstations --------------------------------------------------------------------------

    def register_host(self, host: HostInfo) -> None:
        with self._begin() as session:
            session.merge(HostRow(
                name=host.name, instance=host.instance, version=host.version,
                device=host.device, models=json.dumps(host.models), workers=host.workers,
                started_at=host.started_at, heartbeat_at=host.heartbeat_at, stopped_at=None))

    def host_heartbeat(self, name: str, instance: str, models: list[str] | None = None) -> None:
        """The workstation ``name`` is alive (only while ``instance`` is its daemon)."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if models is not None:
            values["models"] = json.dumps(models)
        with self._begin() as session:
            session.execute(update(HostRow).where(HostRow.name == name,
                                                  HostRow.instance == instance).values(**values))

    def host_stopped(self, name: str, instance: str) -> None:
        with self._begin() as session:
            session.execute(update(HostRow).where(HostRow.name == name,
                                                  HostRow.instance == instance)
                            .values(stopped_at=utcnow()))

    def hosts(self) -> list[HostInfo]:
        with self._begin() as session:
            return [HostInfo(r.name, r.instance, r.version, r.device, json.loads(r.models),
                             r.workers, r.started_at, r.heartbeat_at, r.stopped_at)
                    for r in session.scalars(select(HostRow).order_by(HostRow.name))]

    def running_by_host(self) -> dict[str, list[Job]]:
        """Running jobs by the workstation that claimed them (the worker id's first part)."""
        out: dict[str, list[Job]] = {}
        with self._begin() as session:
            for row in session.scalars(select(JobRow).where(
                    JobRow.status == JobStatus.RUNNING).order_by(JobRow.id)):
                out.setdefault((row.claimed_by or "?").split(":")[0], []).append(
                    Job.from_row(row))
        return out

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process may run the studio-wide task ``name`` now: on PostgreSQL, while
        it holds the advisory lock for it (one workstation at a time; the others skip it), on
        SQLite always (one workstation)."""
        if not self.server:
            yield True
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:7], "big")
        with job_log_errors(), self.engine.connect() as connection:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            connection.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()

    def forget_daemons(self, older_than: datetime) -> int:
        with self._begin() as session:
            result = session.execute(delete(DaemonRow).where(DaemonRow.heartbeat_at < older_than))
            return result.rowcount

    # -- maintenance ---------------------------------------------------------------------------

    def maintain(self) -> tuple[int, int, int] | None:
        """Let SQLite refresh its statistics and fold the write-ahead log back into the database;
        returns ``PRAGMA wal_checkpoint``'s (busy, log frames, checkpointed frames), or None when
        the database is not SQLite."""
        if self.engine.dialect.name != "sqlite":
            return None
        # Outside any transaction: a checkpoint cannot run inside one. The connections are in
        # autocommit at the DB-API level (see store.engine), so a raw cursor runs bare statements.
        with job_log_errors():
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA optimize")
                busy, log, folded = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                cursor.close()
            finally:
                raw.close()
        return busy, log, folded
