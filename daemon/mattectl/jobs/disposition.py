"""Moving originals to the processed or failed folder, never overwriting anything there."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from mattectl.fsutil import fsync_dir, numbered, publish, temp_path_for


def move_original(src: Path, dest_root: Path, rel_path: str) -> Path:
    """Move ``src`` to ``dest_root/rel_path`` (``-1``, ``-2``... if taken); returns where it went.

    Within one filesystem a hard link then an unlink: a crash in between leaves the photo in
    both places, never in neither. Across filesystems: copy, flush, publish, then unlink.
    """
    dest = dest_root / rel_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    for candidate in numbered(dest):
        try:
            os.link(src, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            if not _copy_no_clobber(src, candidate):
                continue
        os.unlink(src)
        fsync_dir(src.parent)
        fsync_dir(candidate.parent)
        return candidate
    raise AssertionError("unreachable")


def _copy_no_clobber(src: Path, target: Path) -> bool:
    tmp = temp_path_for(target)
    try:
        shutil.copy2(src, tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        return publish(tmp, target, replace=False)
    finally:
        tmp.unlink(missing_ok=True)
