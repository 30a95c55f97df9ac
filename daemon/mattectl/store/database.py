"""The SQLite job database as a file: a new one told apart from a lost one, created complete,
checked, backed up, set aside and restored.

A database is created under a temporary name and linked into place, so mattectl never leaves an
empty file; once it exists, a marker beside it (``jobs.sqlite3.created``) says so. A missing
file with the marker, an empty file or a file that is not SQLite is a lost job log, never taken
for a new one: a fresh log would queue every photo in the drop folders again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from mattectl.errors import JobLogDamagedError, MattectlError
from mattectl.store.engine import (
    BUSY_TIMEOUT_MS,
    SCHEMA_VERSION,
    damaged,
    make_engine,
    migrate,
    sqlite_url,
)

HEADER = b"SQLite format 3\x00"
MARKER_SUFFIX = ".created"
COMPANIONS = ("-wal", "-shm", "-journal")
STAMP = "%Y%m%d-%H%M%S"


def marker_path(db: Path) -> Path:
    return db.with_name(db.name + MARKER_SUFFIX)


def companions(db: Path) -> list[Path]:
    """SQLite's files beside ``db`` (write-ahead log, shared memory, rollback journal)."""
    return [db.with_name(db.name + suffix) for suffix in COMPANIONS]


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STAMP)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def connect(db: Path) -> sqlite3.Connection:
    """A plain connection to an existing file (never creates one)."""
    return sqlite3.connect(f"file:{quote(str(db))}?mode=rw", uri=True,
                           timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)


# -- new or lost -------------------------------------------------------------------------------

def check_file(db: Path) -> bool:
    """Whether ``db`` is there to be opened; False when none was ever created here.

    Raises JobLogDamagedError when it is missing although one was created (the marker), empty
    (0 bytes), not a regular file, or not an SQLite database (its header)."""
    try:
        st = os.stat(db)
    except FileNotFoundError:
        marker = marker_path(db)
        if marker.exists():
            raise damaged(db, f"is missing, though one was created there ({marker} says when)",
                          "missing") from None
        return False
    if not stat.S_ISREG(st.st_mode):
        raise damaged(db, "is not a regular file", "not a regular file")
    if st.st_size == 0:
        raise damaged(db, "is empty (0 bytes): it was truncated or replaced by an empty file",
                      "empty (0 bytes)")
    with db.open("rb") as fh:
        header = fh.read(len(HEADER))
    if header != HEADER:
        raise damaged(db, f"is not an SQLite database (it begins with {header[:16]!r})",
                      "not an SQLite database (garbage header)")
    return True


def mark_created(db: Path, *, replace: bool = False) -> None:
    """Write the marker that says a job database exists here (once; again after a reset)."""
    marker = marker_path(db)
    if marker.exists() and not replace:
        return
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    text = (f"mattectl's job database {db.name} was here on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.\nWhile this file exists, a missing or "
            f"empty {db.name} is a lost job log, not a new one: see `mattectl db check`.\n")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, marker)
    fsync_dir(marker.parent)


def create(db: Path) -> None:
    """A new, empty job log at ``db``: built under a temporary name, flushed, then linked into
    place (an existing file is never replaced), and marked."""
    # A write-ahead log left beside a lost database must not be replayed into the new one.
    stale = [p for p in companions(db) if p.exists()]
    if stale:
        set_aside(db, "stale", only=stale)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.new")
    for leftover in (tmp, *companions(tmp)):
        leftover.unlink(missing_ok=True)
    engine = make_engine(sqlite_url(tmp), writer=False)  # a rollback journal: one whole file
    try:
        migrate(engine)
    finally:
        engine.dispose()
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):  # made by another process: that one stands
            os.link(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(db.parent)
    mark_created(db)


# -- checking ----------------------------------------------------------------------------------

@dataclass
class DatabaseCheck:
    """What ``mattectl db check`` reports."""

    path: Path
    exists: bool
    size: int | None = None
    schema_version: int | None = None
    expected_version: int = SCHEMA_VERSION
    problems: list[str] = field(default_factory=list)
    backups: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def integrity_problems(connection: sqlite3.Connection, *, full: bool) -> list[str]:
    """``PRAGMA integrity_check`` (``quick_check`` unless ``full``): what it found, or []."""
    try:
        rows = connection.execute(
            "PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    found = [line for (text,) in rows for line in str(text).splitlines() if line != "ok"]
    return [line for line in found if not line.startswith("*** in database")]


def schema_version(connection: sqlite3.Connection) -> int | None:
    """The higher of Alembic's revision (as a number) and the newest row of schema_version (all
    a database from before Alembic has); None without either. A revision that is not a number
    is a newer mattectl's: reported as one past this mattectl's version."""
    found: list[int] = []
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is not None:
            found.append(int(row[0]) if str(row[0]).isdigit() else SCHEMA_VERSION + 1)
    except sqlite3.DatabaseError:
        pass
    try:
        newest = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if newest is not None:
            found.append(newest)
    except sqlite3.DatabaseError:
        pass
    return max(found) if found else None


def check(db: Path, *, full: bool = True) -> DatabaseCheck:
    """Check ``db`` without changing it: the file, SQLite's integrity check, the schema."""
    from mattectl.store.backup import backups  # (backup imports this module)

    result = DatabaseCheck(db, exists=db.exists(), backups=backups(db))
    try:
        if not check_file(db):
            return result
    except JobLogDamagedError as exc:
        result.problems.append(exc.reason)
        return result
    result.size = db.stat().st_size
    connection = connect(db)
    try:
        result.problems += integrity_problems(connection, full=full)
        result.schema_version = schema_version(connection)
    finally:
        connection.close()
    if result.schema_version is None and not result.problems:
        result.problems.append("no schema version: not a mattectl job database")
    elif result.schema_version is not None and result.schema_version > SCHEMA_VERSION:
        result.problems.append(f"schema version {result.schema_version} is newer than this "
                               f"mattectl's ({SCHEMA_VERSION}): upgrade mattectl")
    return result


def verify(db: Path) -> None:
    """Raise JobLogDamagedError unless ``PRAGMA quick_check`` passes (the daemon's start)."""
    connection = connect(db)
    try:
        problems = integrity_problems(connection, full=False)
    finally:
        connection.close()
    if problems:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        raise damaged(db, f"is corrupt (SQLite's quick_check: {shown})", "corrupt pages")


# -- moving aside ------------------------------------------------------------------------------

@contextmanager
def daemon_stopped(lock: Path) -> Iterator[None]:
    """Hold the daemon's instance lock (``lock``: its pid file, see mattectl.app.InstanceLock)
    without writing it, so that no daemon starts meanwhile; MattectlError while one runs."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise MattectlError(f"the daemon (pid {pid}) is running with this job database: "
                                "stop it first (systemctl stop mattectl)") from None
        yield
    finally:
        os.close(fd)


def set_aside(db: Path, label: str, *, only: list[Path] | None = None) -> list[Path]:
    """Rename ``db`` and its companions to ``<name>.<label>-<time>`` (nothing is deleted);
    returns the new names."""
    base = db.with_name(f"{db.name}.{label}-{stamp()}")
    moved = []
    for path, suffix in [(db, ""), *zip(companions(db), COMPANIONS, strict=True)]:
        if (only is not None and path not in only) or not path.exists():
            continue
        target = base.with_name(base.name + suffix)
        os.rename(path, target)
        moved.append(target)
    if moved:
        fsync_dir(db.parent)
    return moved


def reset(db: Path) -> list[Path]:
    """Move the database (whatever its state) aside and create a new, empty one; returns where
    the old files went. The caller holds the daemon's lock."""
    moved = set_aside(db, "bad")
    marker_path(db).unlink(missing_ok=True)
    create(db)
    return moved
