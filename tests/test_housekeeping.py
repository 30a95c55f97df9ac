from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from mattectl.config import Settings
from mattectl.housekeeping import (
    backup_database,
    maintain_database,
    prune_deliveries,
    prune_jobs,
    prune_processed,
)
from mattectl.store import backup
from mattectl.store.repository import JobRepository, JobResult, NewJob


def test_prune_processed_uses_the_move_time(make_settings: Callable[..., Settings],
                                            tmp_path: Path) -> None:
    settings = make_settings(watch={"on_success": "move", "processed_dir": "done",
                                    "processed_retention_days": 7})
    watch = settings.watch[0]
    old_photo = watch.processed_dir / "shoot" / "old.jpg"
    old_photo.parent.mkdir(parents=True)
    old_photo.write_bytes(b"photo")
    os.utime(old_photo, (0, 0))  # taken decades ago, but moved here just now
    assert prune_processed(watch) == []
    in_eight_days = time.time() + 8 * 86_400
    assert prune_processed(watch, now=in_eight_days) == [old_photo]
    assert not old_photo.exists()


def test_prune_processed_keeps_everything_by_default(make_settings: Callable[..., Settings]
                                                     ) -> None:
    watch = make_settings(watch={"on_success": "move", "processed_dir": "done"}).watch[0]
    watch.processed_dir.mkdir()
    (watch.processed_dir / "a.jpg").write_bytes(b"x")
    assert prune_processed(watch, now=time.time() + 1e9) == []


def test_prune_jobs_and_database_maintenance(repo: JobRepository) -> None:
    job, _ = repo.add(NewJob("studio", Path("/in/a.jpg"), "a.jpg", "a" * 64, 1, 1))
    repo.claim("w", ["studio"])
    repo.finish(job.id, "w", JobResult())
    assert prune_jobs(repo, retention_days=0) == 0  # 0 keeps rows
    assert prune_jobs(repo, retention_days=30) == 0  # too recent
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET finished_at = '2000-01-01 00:00:00'"))
    assert prune_jobs(repo, retention_days=30) == 1
    maintain_database(repo)
    wal = Path(str(repo.engine.url.database) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated


def test_deliveries_are_forgotten_only_when_original_and_cutout_are_both_gone(
        make_settings: Callable[..., Settings], repo: JobRepository) -> None:
    watch = make_settings(watch={"name": "studio"}).watch[0]
    watch.output.mkdir()
    files = {}
    for n in ("both", "original", "cutout", "neither"):
        original, cutout = watch.input / f"{n}.jpg", watch.output / f"{n}.png"
        if n in ("both", "original"):
            original.write_bytes(b"photo")
        if n in ("both", "cutout"):
            cutout.write_bytes(b"cutout")
        job, _ = repo.add(NewJob("studio", original, original.name, n.ljust(64, "0"), 5, 1))
        repo.claim("w", ["studio"])
        repo.finish(job.id, "w", JobResult(output_path=cutout))
        files[n] = job.input_hash
    assert prune_deliveries(repo, [watch], retention_days=30) == 0  # their job rows are kept
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET finished_at = '2000-01-01 00:00:00'"))
        conn.execute(text("UPDATE deliveries SET delivered_at = '2000-01-01 00:00:00'"))
    assert prune_jobs(repo, retention_days=30) == 4
    assert prune_deliveries(repo, [watch], retention_days=0) == 0  # 0 keeps everything
    watch.output.rename(watch.output.with_name("unmounted"))
    assert prune_deliveries(repo, [watch], retention_days=30) == 0  # a share not mounted
    watch.output.with_name("unmounted").rename(watch.output)
    assert prune_deliveries(repo, [watch], retention_days=30) == 1
    remembered = {n for n, digest in files.items() if repo.delivered("studio", digest)}
    assert remembered == {"both", "original", "cutout"}


def test_the_job_log_is_backed_up_when_its_newest_backup_is_older_than_the_interval(
        repo: JobRepository, caplog: pytest.LogCaptureFixture) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    first = backup_database(repo, interval_h=24, keep=2, now=start)
    assert first is not None and first.exists()
    assert backup_database(repo, interval_h=24, keep=2, now=start + timedelta(hours=23)) is None
    second = backup_database(repo, interval_h=24, keep=2, now=start + timedelta(hours=24))
    assert second is not None and backup.backups(repo.path) == [first, second]
    assert backup_database(repo, interval_h=0, keep=2, now=start + timedelta(days=9)) is None
    # A failure is one line in the log, and the backups already taken stay.
    con = sqlite3.connect(repo.path)
    page, = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_jobs_claim'"
                        ).fetchone()
    con.close()
    repo.maintain()  # the daemon's checkpoint: every page in the file
    with repo.path.open("r+b") as fh:
        fh.seek((page - 1) * 4096)
        fh.write(b"\xff" * 4096)
    assert backup_database(repo, interval_h=24, keep=2, now=start + timedelta(days=3)) is None
    assert "job database backup failed (the earlier backups are kept)" in caplog.text
    assert backup.backups(repo.path) == [first, second]
