"""Periodic tidying: old job rows, old processed originals, SQLite maintenance."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from mattectl.config import WatchConfig
from mattectl.errors import MattectlError
from mattectl.store import backup
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


def prune_deliveries(repo: JobRepository, watches: Iterable[WatchConfig],
                     retention_days: float) -> int:
    """Forget delivered photos whose job row was pruned and whose original and cutout are
    both gone: nothing is left to cut out twice. While either exists the memory is kept (a
    cutout missing from a share that is not mounted comes back; an original still in the drop
    folder must not be cut out again). A folder whose output folder is not there is left alone."""
    if retention_days <= 0:
        return 0  # job rows are kept, and with them their deliveries
    outputs = {w.name: w.output for w in watches}
    cutoff = utcnow() - timedelta(days=retention_days)
    after, forgotten = 0, 0
    while page := repo.deliveries_before(cutoff, after_id=after):
        after = page[-1].id or after
        gone = [d.id for d in page if d.id is not None and d.folder in outputs
                and outputs[d.folder].is_dir() and not os.path.lexists(d.output_path)
                and not os.path.lexists(d.input_path)]
        forgotten += repo.forget_deliveries(gone)
    if forgotten:
        logger.info("forgot %d delivered photo(s) whose original and cutout are both gone",
                    forgotten)
    return forgotten


def backup_database(repo: JobRepository, interval_h: float, keep: int,
                    now: datetime | None = None) -> Path | None:
    """Back up the job log when its newest backup is older than ``interval_h`` (so that a
    daemon restarted more often than that still takes them); returns the new backup."""
    if interval_h <= 0 or repo.path is None:
        return None
    now = now or utcnow()
    newest = backup.newest(repo.path)
    if newest is not None and now - newest < timedelta(hours=interval_h):
        return None
    try:
        taken = backup.backup(repo.path, keep=keep, now=now)
    except (MattectlError, OSError) as exc:
        logger.error("job database backup failed (the earlier backups are kept): %s", exc)
        return None
    logger.info("backed up the job database to %s", taken)
    return taken


def maintain_database(repo: JobRepository) -> None:
    """Let SQLite refresh its statistics and fold the write-ahead log back into the database."""
    found = repo.maintain()
    if found is not None:
        logger.debug("wal checkpoint: busy=%s log=%s checkpointed=%s", *found)
