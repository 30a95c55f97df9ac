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

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mattectl.errors import JobLogUnavailableError, MattectlError
from mattectl.store.models import Base, SchemaVersionRow

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

# version -> migration from version - 1. Fresh databases get create_all() and the newest version.
MIGRATIONS: dict[int, Callable[[Session], None]] = {}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@contextmanager
def job_log_errors() -> Iterator[None]:
    """The store's boundary: a locked, busy or unreadable database leaves the store as
    :class:`JobLogUnavailableError`, so no caller needs to know the driver's exceptions. (A raw
    DB-API cursor raises sqlite3's own error, not SQLAlchemy's wrapper: both are translated.)"""
    try:
        yield
    except OperationalError as exc:
        raise JobLogUnavailableError(str(exc.orig if exc.orig is not None else exc)) from exc
    except sqlite3.OperationalError as exc:
        raise JobLogUnavailableError(str(exc)) from exc


def make_engine(url: str, *, writer: bool = True) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

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
