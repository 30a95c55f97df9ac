"""Periodic tidying: old job rows, old processed originals, SQLite maintenance."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from mattectl.config import WatchConfig
from mattectl.store.models import utcnow
from mattectl.store.repository import JobRepository

logger = logging.getLogger(__name__)

DAY_S = 86_400.0


def prune_jobs(repo: JobRepository, retention_days: float) -> int:
    """Delete finished job rows older than the retention (0 keeps them)."""
    if retention_days <= 0:
        return 0
    removed = repo.prune(utcnow() - timedelta(days=retention_days))
    repo.forget_daemons(utcnow() - timedelta(days=max(retention_days, 1)))
    if removed:
        logger.info("pruned %d finished job row(s) older than %g days", removed, retention_days)
    return removed


def prune_processed(watch: WatchConfig, now: float | None = None) -> list[Path]:
    """Delete originals in the processed folder that were moved there longer ago than the
    folder's retention. The move time is the inode's change time (a hard link or a copy sets it;
    the mtime is the photo's own and may be years old)."""
    folder = watch.processed_dir
    if folder is None or watch.processed_retention_days <= 0 or not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - watch.processed_retention_days * DAY_S
    removed = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            try:
                if path.lstat().st_ctime < cutoff:
                    path.unlink()
                    removed.append(path)
            except OSError as exc:
                logger.warning("cannot prune %s: %s", path, exc.strerror)
    if removed:
        logger.info("%s: deleted %d processed original(s) older than %g days", watch.name,
                    len(removed), watch.processed_retention_days)
    return removed


def maintain_database(repo: JobRepository) -> None:
    """Let SQLite refresh its statistics and fold the write-ahead log back into the database."""
    found = repo.maintain()
    if found is not None:
        logger.debug("wal checkpoint: busy=%s log=%s checkpointed=%s", *found)
