"""Folder-wide conditions: an output folder that is full or cannot be written, a drop folder that
cannot be read. Each probe tries the real thing on the folder itself and returns what is wrong,
in words for the studio, or None when the folder works.

A job that fails on such a folder is not the photo's fault: the worker probes, and when the
probe confirms the condition, the folder is paused (see :mod:`mattectl.jobs.pauses`) and the
same probe, run periodically, resumes it. When the probe finds the folder fine, the failure was
the photo's own (one sub-folder, one file) and the job fails or is retried as before.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mattectl.fsutil import temp_path_for

# What a write can meet that is about the folder (its disk, its mount, its permissions), not the
# photo. Only these are probed: others (a name too long, a file in the way) are the photo's.
FOLDER_WIDE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})

_OUTPUT = {
    errno.ENOSPC: "is full",
    errno.EDQUOT: "is over its disk quota",
    errno.EROFS: "is read-only",
    errno.EACCES: "is not writable by mattectl",
    errno.EPERM: "is not writable by mattectl",
    errno.ENOENT: "is missing",
}
_INPUT = {
    errno.EACCES: "is not readable by mattectl",
    errno.EPERM: "is not readable by mattectl",
    errno.ENOENT: "is missing",
    errno.ENOTDIR: "is not a folder",
}


def os_error_of(exc: BaseException) -> OSError | None:
    """The operating system's error behind ``exc`` (``exc`` itself, or its cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def folder_wide(exc: BaseException) -> bool:
    """Whether ``exc`` is an error that may be about a whole folder (then worth a probe)."""
    cause = os_error_of(exc)
    return cause is not None and cause.errno in FOLDER_WIDE


def output_problem(root: Path, need_bytes: int) -> str | None:
    """Whether ``root`` takes a new file of ``need_bytes``: a hidden temporary file is created
    there and given that much space (``posix_fallocate``: really reserved, quota included),
    then removed at once."""
    tmp = temp_path_for(root / "space-check")
    try:
        root.mkdir(parents=True, exist_ok=True)  # as publishing the cutout would
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return _output_words(root, exc)
    try:
        if need_bytes > 0:
            os.posix_fallocate(fd, 0, need_bytes)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            return _output_words(root, exc)
        try:  # a filesystem without fallocate: write it
            os.write(fd, bytes(need_bytes))
            os.fsync(fd)
        except OSError as write_exc:
            return _output_words(root, write_exc)
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)
    return None


def input_problem(root: Path) -> str | None:
    """Whether the drop folder ``root`` can be listed and its entries reached (read and search
    permission on the folder itself; a file of its own that cannot be read is that photo's
    problem)."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return _input_words(root, exc)
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)  # needs search permission on the folder
                break
    except OSError as exc:
        return _input_words(root, exc)
    finally:
        os.close(fd)
    return None


def _output_words(root: Path, exc: OSError) -> str:
    what = _OUTPUT.get(exc.errno or 0, "cannot be written")
    words = f"output folder {root} {what} ({exc.strerror or exc})"
    if exc.errno == errno.ENOSPC:
        free = _free_bytes(root)
        if free is not None:
            words = f"{words[:-1]}; {_size(free)} free)"
    return words


def _input_words(root: Path, exc: OSError) -> str:
    return f"drop folder {root} {_INPUT.get(exc.errno or 0, 'cannot be read')} " \
           f"({exc.strerror or exc})"


def _free_bytes(root: Path) -> int | None:
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
