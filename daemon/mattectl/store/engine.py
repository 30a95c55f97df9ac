"""Engine set-up and schema versioning.

SQLite runs in WAL mode with a busy timeout so that ``mattectl status`` reads while the daemon
writes. Writers open transactions with ``BEGIN IMMEDIATE``: a deferred transaction that later
wants to write can hit SQLITE_BUSY without waiting, which the busy timeout cannot fix.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    insert,
    inspect,
    make_url,
    text,
)
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from mattectl.errors import (
    DaemonNotRunningError,
    JobLogDamagedError,
    JobLogUnavailableError,
    MattectlError,
    SchemaTooNewError,
    SchemaTooOldError,
)
from mattectl.store.models import Base, SchemaVersionRow, utcnow

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 5  # Alembic's head revision, "0005" (store/migrations/versions)
HEAD = f"{SCHEMA_VERSION:04d}"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATE_LOCK = 0x6D61_7474_0001  # PostgreSQL advisory lock: one workstation migrates at a time
BUSY_TIMEOUT_MS = 30_000
# SQLite's words for a file that is not (or no longer) a sound database; waiting cannot help.
DAMAGED_ERRORS = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
BACKUP_DIRNAME = "backups"  # beside the database: backups/jobs-YYYYmmdd-HHMMSS-ffffff.sqlite3


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


def current_version(connection: Connection) -> int | None:
    """The schema's version: the higher of Alembic's revision (``"0005"`` is 5) and the newest
    row of schema_version (all that mattectl before Alembic kept); None without either.
    ValueError for a revision this mattectl cannot read (a newer one's)."""
    tables = set(inspect(connection).get_table_names())
    found: list[int] = []
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision is not None:
            found.append(int(revision))
    if "schema_version" in tables:
        newest = connection.execute(text("SELECT max(version) FROM schema_version")).scalar()
        if newest is not None:
            found.append(newest)
    return max(found) if found else None


def _alembic(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, *, upgrade: bool = True) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` with Alembic; returns the version found before (0
    for a new database). A database at a version older than Alembic's history (1..4, kept in
    schema_version) is stamped with its revision first, then upgraded in place. ``upgrade=False``
    creates a new database but leaves an older one as it is (SchemaTooOldError).

    Raises SchemaTooNewError for a schema newer than this mattectl knows. On PostgreSQL the work
    runs under an advisory lock, so workstations starting together migrate it once."""
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
        tables = set(inspect(connection).get_table_names())
        try:
            found = current_version(connection)
        except ValueError:
            found = None
            if "alembic_version" in tables:
                raise SchemaTooNewError(
                    f"the job log's schema ({_revision(connection)}) is newer than this mattectl "
                    f"knows ({SCHEMA_VERSION}): upgrade mattectl") from None
        if found is None:
            if tables & {"jobs", "daemons"}:
                raise MattectlError("the database has job tables but no schema version; "
                                    "refusing to guess (restore a backup or start a new state "
                                    "directory)")
            Base.metadata.create_all(connection)
            connection.execute(insert(SchemaVersionRow).values(version=SCHEMA_VERSION,
                                                               applied_at=utcnow()))
            command.stamp(_alembic(connection), HEAD)
            logger.info("created job database at schema version %d", SCHEMA_VERSION)
            return 0
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(f"the job log is at schema version {found}, newer than this "
                                    f"mattectl knows ({SCHEMA_VERSION}): upgrade mattectl")
        if found < SCHEMA_VERSION:
            if not upgrade:
                raise SchemaTooOldError(
                    f"the job log is at schema version {found}, older than this mattectl's "
                    f"({SCHEMA_VERSION}): run `mattectl db upgrade` (with every daemon on it "
                    "stopped)")
            config = _alembic(connection)
            if "alembic_version" not in tables:
                command.stamp(config, f"{found:04d}")  # a database from before Alembic
            logger.info("migrating job database from schema version %d to %d", found,
                        SCHEMA_VERSION)
            command.upgrade(config, HEAD)
        return found


def check_version(engine: Engine) -> int:
    """For a reader: the schema's version, which must be this mattectl's (SchemaTooNewError,
    SchemaTooOldError otherwise: reading a schema it does not know would fail on its columns)."""
    with engine.connect() as connection:
        try:
            found = current_version(connection)
        except ValueError:
            found = SCHEMA_VERSION + 1
    if found is None:
        raise DaemonNotRunningError("no job log in this database yet: no daemon has run with it "
                                    "(`mattectl db upgrade` creates it)")
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(f"the job log is at schema version {found}, newer than this "
                                f"mattectl knows ({SCHEMA_VERSION}): upgrade mattectl")
    if found < SCHEMA_VERSION:
        raise SchemaTooOldError(f"the job log is at schema version {found}, older than this "
                                f"mattectl's ({SCHEMA_VERSION}): restart the daemon, or run "
                                "`mattectl db upgrade`")
    return found


def _revision(connection: Connection) -> str:
    return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
