"""Online backups of the job log and restoring one (mattectl.store.backup), on real files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mattectl.errors import InputError, JobLogDamagedError
from mattectl.store import backup, database
from mattectl.store.repository import JobRepository, NewJob

from .support import corrupt_an_index_page


def new_job(n: int) -> NewJob:
    return NewJob("studio", Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1)


def test_a_backup_is_a_checked_snapshot_taken_while_the_daemon_writes(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    repo = JobRepository.open(db)
    try:
        repo.add(new_job(1))
        # A write still open in the daemon's write-ahead log: not in the snapshot, not blocking it.
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE jobs SET error = 'uncommitted'")
        taken = backup.backup(db, keep=3)
        writer.execute("ROLLBACK")
        writer.close()
    finally:
        repo.close()
    assert taken.parent == tmp_path / "backups" and taken.name.startswith("jobs-")
    assert taken.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "backups").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [taken.name]  # no temp left
    assert database.check(taken).ok
    copy = JobRepository.open(taken, writer=False)
    try:
        [job] = copy.list()
        assert job.error is None
    finally:
        copy.close()


def test_only_the_newest_backups_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    JobRepository.open(db).close()
    start = datetime(2024, 5, 1, tzinfo=UTC)
    taken = [backup.backup(db, keep=2, now=start + timedelta(hours=h)) for h in range(4)]
    assert backup.backups(db) == taken[2:]
    assert backup.newest(db) == start + timedelta(hours=3)


def test_a_corrupt_database_never_rotates_the_good_backups_away(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    repo = JobRepository.open(db)
    for n in range(300):
        repo.add(new_job(n))
    repo.close()
    good = backup.backup(db, keep=1, now=datetime(2024, 5, 1, tzinfo=UTC))
    corrupt_an_index_page(db)
    with pytest.raises(JobLogDamagedError, match="could not be backed up"):
        backup.backup(db, keep=1)
    assert backup.backups(db) == [good]
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [good.name]


def test_restore_puts_a_backup_in_place_and_sets_the_current_file_aside(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    repo = JobRepository.open(db)
    repo.add(new_job(1))
    repo.close()
    taken = backup.backup(db, keep=3)
    db.write_bytes(b"garbage" * 100)
    [aside] = backup.restore(db, taken)
    assert aside.read_bytes() == b"garbage" * 100
    assert db.stat().st_mode & 0o777 == 0o600
    repo = JobRepository.open(db, verify=True)
    try:
        assert [j.rel_path for j in repo.list()] == ["1.jpg"]
    finally:
        repo.close()
    with pytest.raises(InputError, match="cannot be restored: not an SQLite database"):
        backup.restore(db, aside)
    with pytest.raises(InputError, match="no backup at"):
        backup.restore(db, tmp_path / "nothing.sqlite3")


def test_backups_within_one_second_keep_apart_and_rotate_in_order(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    JobRepository.open(db).close()
    start = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    taken = [backup.backup(db, keep=3, now=start + timedelta(microseconds=250_000 * n))
             for n in range(4)]  # four in one second: each its own file, the oldest rotated
    assert backup.backups(db) == taken[1:]
    assert backup.newest(db) == start + timedelta(microseconds=750_000)
