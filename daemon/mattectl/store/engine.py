"""Engine set-up and schema versioning.

SQLite runs in WAL mode with a busy timeout so that ``mattectl status`` reads while the daemon
writes. Writers open transactions with ``BEGIN IMMEDIATE``: a deferred transaction that later
wants to write can hit SQLITE_BUSY without waiting, which the busy timeout cannot fix.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, insert, inspect, make_url, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mattectl.errors import JobLogDamagedError, JobLogUnavailableError, MattectlError
from mattectl.store.models import Base, DeliveryRow, JobRow, SchemaVersionRow
from mattectl.store.status import JobStatus

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 30_000
# SQLite's words for a file that is not (or no longer) a sound database; waiting cannot help.
DAMAGED_ERRORS = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
BACKUP_DIRNAME = "backups"  # beside the database: backups/jobs-YYYYmmdd-HHMMSS-ffffff.sqlite3


def _v2_deliveries(session: Session) -> None:
    """The output's hash on each job, and the table of delivered photos, filled from the done
    jobs still in the log (their rows would otherwise take that memory with them when pruned)."""
    connection = session.connection()
    connection.execute(text("ALTER TABLE jobs ADD COLUMN output_hash VARCHAR(64)"))
    Base.metadata.tables[DeliveryRow.__tablename__].create(connection)
    connection.execute(insert(DeliveryRow).from_select(
        ["folder", "input_hash", "input_path", "input_size", "input_mtime_ns", "output_path",
         "job_id", "delivered_at"],
        select(JobRow.folder, JobRow.input_hash, JobRow.input_path, JobRow.input_size,
               JobRow.input_mtime_ns, JobRow.output_path, JobRow.id, JobRow.finished_at)
        .where(JobRow.status == JobStatus.DONE, JobRow.output_path.is_not(None),
               JobRow.finished_at.is_not(None))))


def _v3_precision(session: Session) -> None:
    """The number format each job's model ran in (none for jobs before it was recorded)."""
    session.connection().execute(text("ALTER TABLE jobs ADD COLUMN precision VARCHAR(16)"))


def _v4_quality(session: Session) -> None:
    """Each job's confidence in its alpha (0..1, see matting) and the time its edges took."""
    connection = session.connection()
    connection.execute(text("ALTER TABLE jobs ADD COLUMN confidence FLOAT"))
    connection.execute(text("ALTER TABLE jobs ADD COLUMN refine_ms FLOAT"))


# version -> migration from version - 1. Fresh databases get create_all() and the newest version.
MIGRATIONS: dict[int, Callable[[Session], None]] = {2: _v2_deliveries, 3: _v3_precision,
                                                   4: _v4_quality}


def backups_dir(database: Path) -> Path:
    return database.parent / BACKUP_DIRNAME


def recovery_advice(database: Path) -> str:
    """How to get going again, naming the newest backup when there is one."""
    found = sorted(backups_dir(database).glob("jobs-*.sqlite3"))  # the same width: by time
    restore = (f"restore the newest backup: mattectl db restore {found[-1]}" if found else
               f"restore a backup of it (none in {backups_dir(database)}): "
               "mattectl db restore FILE")
    return (f"The daemon does not start on it: a fresh job log would not know which photos are "
            f"queued or failed. Check it: mattectl db check; {restore}; or start afresh: "
            f"mattectl db reset --keep-backup (the file is moved aside, never deleted; photos "
            f"already delivered are still recognised and not cut out again). Stop the daemon "
            f"first (systemctl stop mattectl).")


def damaged(database: Path | None, what: str, reason: str = "") -> JobLogDamagedError:
    where = f"the job database {database}" if database is not None else "the job database"
    advice = f" {recovery_advice(database)}" if database is not None else ""
    return JobLogDamagedError(f"{where} {what}.{advice}", reason or what)


def sqlite_error_name(exc: BaseException | None) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{quote(str(path))}"  # SQLAlchemy unquotes it: a '?' stays in the name


@contextmanager
def job_log_errors(database: Path | None = None) -> Iterator[None]:
    """The store's boundary: a locked, busy or unreadable database leaves the store as
    :class:`JobLogUnavailableError`, a corrupt one as :class:`JobLogDamagedError` (saying what to
    do about ``database``), so no caller needs to know the driver's exceptions. (A raw DB-API
    cursor raises sqlite3's own error, not SQLAlchemy's wrapper: both are translated.)"""
    try:
        yield
    except IntegrityError:
        raise  # a constraint, not the file: the caller's to handle
    except DatabaseError as exc:
        orig = exc.orig if exc.orig is not None else exc
        if sqlite_error_name(exc.orig) in DAMAGED_ERRORS:
            raise damaged(database, f"is corrupt ({orig})", str(orig)) from exc
        if isinstance(exc, OperationalError):
            raise JobLogUnavailableError(str(orig)) from exc
        raise
    except sqlite3.DatabaseError as exc:
        if sqlite_error_name(exc) in DAMAGED_ERRORS:
            raise damaged(database, f"is corrupt ({exc})", str(exc)) from exc
        if isinstance(exc, sqlite3.OperationalError):
            raise JobLogUnavailableError(str(exc)) from exc
        raise


def make_engine(url: str, *, writer: bool = True, must_exist: bool = False) -> Engine:
    """``must_exist``: never create the SQLite file (a reader that created an empty file would
    leave an emptied database behind, which the daemon refuses)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    options = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    if must_exist and (path := make_url(url).database):
        # SQLite's URI form with mode=rw opens an existing file only; the path is quoted, so a
        # '?' or '#' in it stays part of the name.
        target = f"file:{quote(path)}?mode=rw"
        engine = create_engine(url, creator=lambda: sqlite3.connect(target, uri=True, **options))
    else:
        engine = create_engine(url, connect_args=options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling is lazy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if writer:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def migrate(engine: Engine) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    tables = set(inspect(engine).get_table_names())
    with Session(engine) as session, session.begin():
        if "schema_version" not in tables:
            if tables & {"jobs", "daemons"}:
                raise MattectlError("the database has job tables but no schema version; refusing "
                                    "to guess (restore a backup or start a new state directory)")
            Base.metadata.create_all(session.connection())
            session.add(SchemaVersionRow(version=SCHEMA_VERSION))
            logger.info("created job database at schema version %d", SCHEMA_VERSION)
            return 0
        found = session.scalar(select(SchemaVersionRow.version).order_by(
            SchemaVersionRow.version.desc()).limit(1)) or 0
        if found > SCHEMA_VERSION:
            raise MattectlError(f"the database is at schema version {found}, newer than this "
                                f"mattectl ({SCHEMA_VERSION}); upgrade mattectl")
        for version in range(found + 1, SCHEMA_VERSION + 1):
            logger.info("migrating job database to schema version %d", version)
            MIGRATIONS[version](session)
            session.add(SchemaVersionRow(version=version))
        return found
