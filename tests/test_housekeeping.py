from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from mattectl.config import Settings
from mattectl.housekeeping import maintain_database, prune_jobs, prune_processed
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
