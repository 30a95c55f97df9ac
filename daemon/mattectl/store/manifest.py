"""The delivery manifest: an append-only list of the photos delivered to an output folder, kept
in that folder (``.mattectl-delivered.jsonl``, hidden), one JSON line per cutout: the folder,
the original's SHA-256, and the cutout's path relative to the output folder.

It outlives the job database (lost, emptied, reset, or its rows pruned): the intake asks it
before queueing a photo that the job log does not know, so a photo whose cutout is still there
is not cut out a second time. Each line is written with one ``write`` on an ``O_APPEND``
descriptor and flushed to disk before the job is recorded as done.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

from mattectl.fsutil import fsync_dir

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".mattectl-delivered.jsonl"
READ_CHUNK = 1 << 20


class DeliveryManifest:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST_NAME
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], str] = {}  # (folder, sha256) -> relative cutout
        self._identity: tuple[int, int] | None = None
        self._offset = 0

    def append(self, folder: str, input_hash: str, cutout: Path) -> None:
        """Record that ``cutout`` (under the root) was delivered for this content; flushed to
        disk on return. Raises OSError (a link planted in its place is not followed)."""
        rel = cutout.relative_to(self.root).as_posix()
        line = json.dumps({"folder": folder, "sha256": input_hash, "cutout": rel,
                           "at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n"
        created = not os.path.lexists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line.encode("utf-8", "surrogatepass"))  # one write: one whole line
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.root)

    def lookup(self, folder: str, input_hash: str) -> Path | None:
        """The cutout recorded for this content in ``folder``, the latest one; None when none
        was (whether it still exists is the caller's question)."""
        with self._lock:
            try:
                self._refresh()
            except OSError as exc:
                logger.warning("cannot read %s: %s", self.path, exc.strerror or exc)
            rel = self._entries.get((folder, input_hash))
        return None if rel is None else self.root / rel

    def _refresh(self) -> None:
        """Read what was appended since the last look (all of it when the file was replaced)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            self._entries, self._identity, self._offset = {}, None, 0
            return
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return
            identity = (st.st_dev, st.st_ino)
            if identity != self._identity or st.st_size < self._offset:
                self._entries, self._identity, self._offset = {}, identity, 0
            fh.seek(self._offset)
            while chunk := fh.read(READ_CHUNK):
                complete = chunk.rfind(b"\n") + 1  # a line still being written waits
                if complete == 0:
                    break
                self._take(chunk[:complete])
                self._offset += complete
                fh.seek(self._offset)

    def _take(self, lines: bytes) -> None:
        for raw in lines.splitlines():
            try:
                entry = json.loads(raw.decode("utf-8", "surrogatepass"))
                self._entries[(entry["folder"], entry["sha256"])] = entry["cutout"]
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line: the others still count
