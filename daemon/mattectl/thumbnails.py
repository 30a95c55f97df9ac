"""Small WebP pictures of finished cutouts for the studio page, made once per job.

A thumbnail is named by its job's id and the hash of the cutout it shows
(``<id>-<hash>.webp``): a job retried into a new cutout gets a new one, and a job id SQLite gives
again after pruning never shows an older job's picture. The page reads them only; the worker
makes them from the cutout's bytes it already holds, and pruning removes those whose job row
(or cutout) is gone.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

from mattectl.fsutil import write_file
from mattectl.imageio.preview import thumbnail_webp
from mattectl.store.repository import Job

logger = logging.getLogger(__name__)

MAX_SIDE = 256
_NAME = re.compile(r"(\d+)-([0-9a-f]{16})\.webp")


class ThumbnailStore:
    def __init__(self, folder: Path, max_side: int = MAX_SIDE) -> None:
        self.folder = folder
        self.max_side = max_side

    def path(self, job: Job) -> Path | None:
        """Where the thumbnail of a done job's cutout lives; None for a job without one."""
        if job.output_hash is None:
            return None
        return self.folder / f"{job.id}-{job.output_hash[:16]}.webp"

    def make(self, job: Job, cutout: bytes) -> Path | None:
        """Make the thumbnail of ``cutout`` (the bytes written for ``job``). Never raises: a
        thumbnail is a convenience, and the job is done whatever becomes of it."""
        path = self.path(job)
        if path is None:
            return None
        try:
            data = thumbnail_webp(cutout, self.max_side)
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file(path, data, "overwrite")
        except (OSError, ValueError) as exc:
            logger.warning("job %d: no thumbnail for the page: %s", job.id, exc)
            return None
        return path

    def read(self, job: Job) -> bytes | None:
        path = self.path(job)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    def prune(self, hashes_of: Callable[[Collection[int]], dict[int, str | None]]) -> int:
        """Remove the thumbnails whose job is gone or now has another cutout. ``hashes_of``
        maps job ids to their output hash (``JobRepository.output_hashes``)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return 0
        found = {name: m for name in names if (m := _NAME.fullmatch(name))}
        current = hashes_of({int(m.group(1)) for m in found.values()})
        removed = 0
        for name, m in found.items():
            digest = current.get(int(m.group(1)))
            if digest is None or digest[:16] != m.group(2):
                try:
                    (self.folder / name).unlink()
                    removed += 1
                except OSError as exc:
                    logger.warning("cannot remove thumbnail %s: %s", name, exc.strerror)
        if removed:
            logger.info("pruned %d thumbnail(s) of pruned or retried jobs", removed)
        return removed
