"""The job database as a file (mattectl.store.database): new or lost, checked, set aside."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

import pytest

from mattectl.errors import JobLogDamagedError, MattectlError
from mattectl.store import database
from mattectl.store.engine import SCHEMA_VERSION
from mattectl.store.repository import JobRepository, NewJob

from .support import corrupt_an_index_page


def make(db: Path, jobs: int = 0) -> None:
    repo = JobRepository.open(db)
    for n in range(jobs):
        repo.add(NewJob("studio", Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1))
    repo.close()


def test_a_new_database_is_created_whole_and_marked(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    assert database.check_file(db) is False  # never created here: a new one may be made
    database.create(db)
    assert database.check_file(db) is True
    assert db.read_bytes().startswith(database.HEADER)
    assert db.stat().st_mode & 0o777 == 0o600
    assert "jobs.sqlite3" in database.marker_path(db).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.sqlite3", "jobs.sqlite3.created"]
    assert database.check(db).ok and database.check(db).schema_version == SCHEMA_VERSION


def test_a_write_ahead_log_left_by_a_lost_database_is_not_replayed_into_a_new_one(
        tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    stale = tmp_path / "jobs.sqlite3-wal"
    stale.write_bytes(b"frames of a database that is gone")
    database.create(db)
    assert not stale.exists()
    [aside] = tmp_path.glob("jobs.sqlite3.stale-*-wal")
    assert aside.read_bytes() == b"frames of a database that is gone"
    assert database.check(db).ok


def test_check_reports_each_kind_of_damage(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    none = database.check(db)
    assert none.ok and not none.exists  # nothing created yet is not a problem
    make(db, jobs=300)
    good = database.check(db)
    assert good.ok and good.size == db.stat().st_size and good.schema_version == SCHEMA_VERSION
    corrupt_an_index_page(db)
    for full in (True, False):
        assert database.check(db, full=full).problems  # integrity_check and quick_check
    os.truncate(db, 0)
    assert database.check(db).problems == ["empty (0 bytes)"]
    db.write_bytes(b"garbage" * 100)
    assert database.check(db).problems == ["not an SQLite database (garbage header)"]
    db.unlink()
    assert database.check(db).problems == ["missing"]


def test_a_newer_schema_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    make(db)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO schema_version VALUES (?, '2030-01-01 00:00:00')",
                (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    found = database.check(db)
    assert found.schema_version == SCHEMA_VERSION + 1
    assert found.problems == [f"schema version {SCHEMA_VERSION + 1} is newer than this "
                              f"mattectl's ({SCHEMA_VERSION}): upgrade mattectl"]


def test_reset_moves_the_damaged_file_aside_and_starts_afresh(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    make(db, jobs=3)
    db.write_bytes(b"garbage" * 100)
    with pytest.raises(JobLogDamagedError):
        JobRepository.open(db)
    [moved] = database.reset(db)
    assert moved.name.startswith("jobs.sqlite3.bad-")
    assert moved.read_bytes() == b"garbage" * 100  # kept, never deleted
    repo = JobRepository.open(db, verify=True)
    try:
        assert repo.list() == []
    finally:
        repo.close()


def test_a_lost_database_can_be_reset_too(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    make(db)
    db.unlink()
    with pytest.raises(JobLogDamagedError, match="is missing"):
        database.check_file(db)
    assert database.reset(db) == []
    assert database.check_file(db) is True


def test_nothing_is_reset_while_the_daemon_holds_its_lock(tmp_path: Path) -> None:
    lock = tmp_path / "mattectl.pid"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running daemon holds
        os.write(fd, b"4242\n")
        with pytest.raises(MattectlError, match=r"daemon \(pid 4242\) is running.*stop it"), \
                database.daemon_stopped(lock):
            pass
    finally:
        os.close(fd)
    with database.daemon_stopped(lock):
        assert lock.read_bytes() == b"4242\n"  # held, not written
