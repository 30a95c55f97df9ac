"""Online backups of the SQLite job log, and restoring one.

A backup is taken with SQLite's backup API while the daemon writes (a consistent snapshot),
into ``<state>/backups/jobs-YYYYmmdd-HHMMSS-ffffff.sqlite3``: written under a temporary name,
checked with ``PRAGMA quick_check``, flushed, then renamed; mode 0600. A copy that fails the
check is discarded and the earlier backups are kept, so a damaged database never rotates the
good backups away.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from mattectl.errors import InputError
from mattectl.store.database import (
    STAMP,
    check,
    connect,
    fsync_dir,
    integrity_problems,
    mark_created,
    set_aside,
    stamp,
)
from mattectl.store.engine import backups_dir, damaged, job_log_errors

PATTERN = "jobs-*.sqlite3"


def backups(db: Path) -> list[Path]:
    """The backups of ``db``, oldest first."""
    folder = backups_dir(db)
    found = folder.glob(PATTERN) if folder.is_dir() else []
    return sorted(found, key=lambda b: (taken_at(b) or datetime.min.replace(tzinfo=UTC), b.name))


def taken_at(backup: Path) -> datetime | None:
    """From the name: ``jobs-YYYYmmdd-HHMMSS-ffffff`` (or without the microseconds, as the
    first backups were named)."""
    text = backup.stem.removeprefix("jobs-")
    for form in (f"{STAMP}-%f", STAMP):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def newest(db: Path) -> datetime | None:
    """When the newest backup of ``db`` was taken, or None."""
    times = [t for b in backups(db) if (t := taken_at(b)) is not None]
    return max(times, default=None)


def backup(db: Path, *, keep: int, now: datetime | None = None) -> Path:
    """Copy the job log into its backups folder, keeping the newest ``keep`` backups; returns the
    new backup. Raises JobLogDamagedError when the copy fails SQLite's check."""
    folder = backups_dir(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    moment = now or datetime.now(UTC)
    # Microseconds too: two backups within a second (a short interval, `mattectl db backup`
    # beside the daemon's) must not replace each other.
    final = folder / f"jobs-{stamp(moment)}-{moment.microsecond:06d}.sqlite3"
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        _copy(db, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(folder)
    for old in backups(db)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return final


def _copy(db: Path, target: Path) -> None:
    with job_log_errors(db):
        source = connect(db)
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            problems = integrity_problems(copy, full=False)
        finally:
            copy.close()
            source.close()
    if problems:
        raise damaged(db, f"could not be backed up: the copy fails SQLite's check "
                          f"({'; '.join(problems[:3])})", "corrupt pages")


def restore(db: Path, backup_file: Path) -> list[Path]:
    """Put ``backup_file`` in place of ``db`` (checked first; the current files are set aside,
    never deleted); returns where they went. The caller holds the daemon's lock."""
    found = check(backup_file)
    if not found.exists:
        raise InputError(f"no backup at {backup_file}")
    if not found.ok:
        raise InputError(f"{backup_file} cannot be restored: {'; '.join(found.problems)}")
    tmp = db.with_name(f".{db.name}.{os.getpid()}.restore")
    shutil.copyfile(backup_file, tmp)
    try:
        os.chmod(tmp, 0o600)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        moved = set_aside(db, "replaced")
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(db.parent)
    mark_created(db, replace=True)
    return moved
