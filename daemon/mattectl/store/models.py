"""ORM tables. These rows never leave :mod:`mattectl.store`; the repository returns dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mattectl.store.status import JobStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the job log")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder: Mapped[str] = mapped_column(String(64))
    input_path: Mapped[str] = mapped_column(Text)
    rel_path: Mapped[str] = mapped_column(Text)
    input_hash: Mapped[str] = mapped_column(String(64))
    input_size: Mapped[int] = mapped_column(BigInteger)
    input_mtime_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, validate_strings=True,
             values_callable=lambda e: [m.value for m in e])
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(32))
    precision: Mapped[str | None] = mapped_column(String(16))  # float32, bfloat16, float16
    decision: Mapped[str | None] = mapped_column(Text)  # JSON: why this model was chosen
    decode_ms: Mapped[float | None] = mapped_column(Float)
    inference_ms: Mapped[float | None] = mapped_column(Float)
    encode_ms: Mapped[float | None] = mapped_column(Float)
    refine_ms: Mapped[float | None] = mapped_column(Float)  # the edges' share of encode_ms
    # 0..1: how sure the alpha is (1 - the share of the subject in the uncertain band)
    confidence: Mapped[float | None] = mapped_column(Float)
    db_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    output_path: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the bytes published at output_path: a retry overwrites that file only while it
    # still holds them (another job may have taken the name since).
    output_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A running job's lease, renewed by its daemon's heartbeat; once past, the job is queued
    # again (its workstation died or lost the network). None for jobs not running.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The same content in the same folder is one job, however many events announce it (and
        # however many workstations: ``folder`` is the configured name, not a host's path).
        UniqueConstraint("folder", "input_hash", name="uq_jobs_folder_hash"),
        Index("ix_jobs_claim", "status", "available_at", "id"),
        Index("ix_jobs_lease", "status", "lease_until"),
        Index("ix_jobs_folder_path", "folder", "input_path"),
        Index("ix_jobs_finished", "finished_at"),
    )


class DeliveryRow(Base):
    """A photo whose cutout was delivered: one row per folder and content, written in the
    transaction that finishes the job. Job rows are pruned after ``daemon.retention_days``; these
    stay (see :func:`mattectl.housekeeping.prune_deliveries`), so that an original kept in the
    drop folder is not cut out again after its job row is gone."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder: Mapped[str] = mapped_column(String(64))
    input_hash: Mapped[str] = mapped_column(String(64))
    # Where the original was, and its size and mtime then: a rescan recognises it unhashed.
    input_path: Mapped[str] = mapped_column(Text)
    input_size: Mapped[int] = mapped_column(BigInteger)
    input_mtime_ns: Mapped[int] = mapped_column(BigInteger)
    output_path: Mapped[str] = mapped_column(Text)
    output_hash: Mapped[str | None] = mapped_column(String(64))
    # The job that delivered it; once its row is pruned SQLite may give the id to a new job.
    job_id: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("folder", "input_hash", name="uq_deliveries_folder_hash"),
        Index("ix_deliveries_folder_path", "folder", "input_path"),
        Index("ix_deliveries_delivered", "delivered_at"),
    )


class DaemonRow(Base):
    """One row per running daemon instance: its heartbeat and what it reports about itself."""

    __tablename__ = "daemons"

    instance: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    info: Mapped[str] = mapped_column(Text, default="{}")  # JSON of a mattectl.report.DaemonReport


class HostRow(Base):
    """One row per workstation sharing the job log: what ``mattectl status`` shows for it."""

    __tablename__ = "hosts"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # database.host_name
    instance: Mapped[str] = mapped_column(String(128))  # host:pid of its latest daemon
    version: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(255))  # its GPU(s), or "CPU"
    models: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the models loaded
    workers: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SchemaVersionRow(Base):
    """Versions 1..4 (before Alembic) and 5: what mattectl before Alembic reads to refuse a newer
    database. Alembic's ``alembic_version`` is the schema's version now."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
