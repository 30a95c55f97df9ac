"""Moving originals to the processed or failed folder, never overwriting anything there."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from mattectl.fsutil import OpenDir, numbered, open_dir

_LINKLESS = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)
COPY_CHUNK = 1 << 20


def move_original(src_root: Path, src_rel: str, dest_root: Path, rel_path: str) -> Path:
    """Move ``src_root/src_rel`` to ``dest_root/rel_path`` (``-1``, ``-2``... if taken); returns
    where it went.

    Both sides are reached from their root's descriptor without following a symbolic link below
    the root (UnsafePathError): a link planted in the processed or failed folder cannot send the
    photo elsewhere, and a source swapped for a link moves the link, never what it points to.
    Within one filesystem a hard link then an unlink: a crash in between leaves the photo in
    both places, never in neither. Across filesystems: copy, flush, publish, then unlink.
    """
    src_path, dest = PurePosixPath(src_rel), PurePosixPath(rel_path)
    with open_dir(src_root) as top, top.descend(src_path.parent.parts) as src, \
            open_dir(dest_root, create=True) as dest_top, \
            dest_top.descend(dest.parent.parts, create=True) as folder:
        for candidate in (p.name for p in numbered(Path(dest.name))):
            try:
                os.link(src_path.name, candidate, src_dir_fd=src.fd, dst_dir_fd=folder.fd,
                        follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _LINKLESS:
                    raise
                if not _copy_no_clobber(src, src_path.name, folder, candidate):
                    continue
            folder.fsync()
            os.unlink(src_path.name, dir_fd=src.fd)
            src.fsync()
            return folder.path / candidate
    raise AssertionError("unreachable")


def _copy_no_clobber(src: OpenDir, name: str, folder: OpenDir, target: str) -> bool:
    """Copy the regular file ``name`` (not a link, FIFO or device) into ``folder`` under
    ``target`` unless that is taken; its mode and times come along."""
    with os.fdopen(src.open_regular(name), "rb") as fh:
        st = os.fstat(fh.fileno())
        tmp, fd = folder.create_temp(0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
                while chunk := fh.read(COPY_CHUNK):
                    out.write(chunk)
                out.flush()
                os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
                os.fsync(out.fileno())
            return folder.publish(tmp, target, replace=False)
        finally:
            folder.unlink(tmp)
