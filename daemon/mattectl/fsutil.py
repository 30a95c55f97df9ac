"""File placement that never overwrites by accident and never shows a partial file."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

TMP_SUFFIX = ".mattectl-tmp"


def temp_path_for(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (hidden, so no watcher picks it up)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # not every filesystem lets a directory be opened (SMB); rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(target: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``target``, flushed to disk."""
    tmp = temp_path_for(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def publish(tmp: Path, target: Path, *, replace: bool) -> bool:
    """Give ``tmp`` the name ``target`` in one step; the temporary name is gone afterwards.

    With ``replace=False`` an existing ``target`` is left alone and False is returned. Hard links
    make that check atomic; on filesystems without them (some SMB and FAT mounts) the check and
    the rename are two steps.
    """
    try:
        if replace:
            os.replace(tmp, target)
            return True
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if target.exists():
                return False
            os.replace(tmp, target)
            return True
        return True
    finally:
        tmp.unlink(missing_ok=True)
        fsync_dir(target.parent)


def numbered(path: Path) -> Iterator[Path]:
    """``a.png``, ``a-1.png``, ``a-2.png``, ..."""
    yield path
    n = 1
    while True:
        yield path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` stays inside ``root`` once ``..`` and symbolic links are resolved."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == real_root or real_root in real.parents


def sweep_temp_files(root: Path) -> list[Path]:
    """Remove temporary files a crash left under ``root``."""
    removed = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if is_temp(path):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def place(tmp: Path, target: Path, policy: str,
          before: Callable[[Path], None] = lambda path: None) -> Path | None:
    """Publish ``tmp`` under ``target`` by collision policy: ``overwrite``, ``skip`` (None when
    the name is taken) or ``suffix`` (``-1``, ``-2``...). ``before(name)`` runs just before a
    name is published, e.g. to record it."""
    if policy == "overwrite":
        before(target)
        publish(tmp, target, replace=True)
        return target
    for candidate in numbered(target):
        if candidate.exists():
            if policy == "skip":
                return None
            continue
        before(candidate)
        if publish(tmp, candidate, replace=False):
            return candidate
        if policy == "skip":
            return None
    raise AssertionError("unreachable")


def write_file(target: Path, data: bytes, policy: str = "suffix",
               before: Callable[[Path], None] = lambda path: None) -> Path | None:
    """Write ``data`` so that a file under the final name is always complete (see ``place``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temp(target, data)
    try:
        return place(tmp, target, policy, before)
    finally:
        tmp.unlink(missing_ok=True)
