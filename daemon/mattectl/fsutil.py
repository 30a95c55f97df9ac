"""File placement that never overwrites by accident, never shows a partial file, and never
follows a symbolic link planted below a folder it reads from or writes to.

A folder the studio named (a drop folder, an output root) is opened once, by its path; every
name below it is reached from that open descriptor one name at a time with ``O_NOFOLLOW``
(``openat``, ``mkdirat``, ``linkat``, ``renameat``), so swapping a sub-folder for a symbolic link
between a check and a use cannot send a read or a write anywhere else: no path below the root is
ever resolved twice. (``openat2`` with ``RESOLVE_BENEATH`` would give the same guarantee in one
call on new kernels; the walk gives it on every kernel, so there is one code path to test.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

# Temporary names are fixed-length and do not repeat the final name, so that any legal name
# (up to NAME_MAX, 255 bytes) can be written: ".mattectl-0123456789ab.tmp".
TMP_PREFIX = ".mattectl-"
TMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.mattectl-[0-9a-f]{12}\.tmp")
OLD_TMP_SUFFIX = ".mattectl-tmp"  # older versions: ".{name}.{hex8}.mattectl-tmp"
# Errors that come from a name rather than from the disk: no retry can make them pass.
NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.ELOOP,
                         errno.EINVAL})
_LINKLESS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)  # no hard links here
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


class UnsafePathError(OSError):
    """A name that leads through a symbolic link, or to something that is not a regular file
    (a FIFO would block the reader for ever, a device never ends). ``strerror`` says which, in a
    photographer's words, with the path."""

    def __init__(self, code: int, reason: str, path: Path) -> None:
        super().__init__(code, reason, str(path))


def temp_name() -> str:
    """A new hidden temporary name (hidden, so no watcher picks it up)."""
    return f"{TMP_PREFIX}{secrets.token_hex(6)}{TMP_SUFFIX}"


def temp_path_for(target: Path) -> Path:
    """A hidden temporary name beside ``target``, as short whatever ``target`` is called."""
    return target.with_name(temp_name())


def is_temp(path: Path) -> bool:
    """A temporary name of this version or of an older one (``.{name}.{hex8}.mattectl-tmp``)."""
    name = path.name
    return bool(_TEMP_NAME.fullmatch(name)) or (name.startswith(".")
                                                and name.endswith(OLD_TMP_SUFFIX))


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


class OpenDir:
    """A folder held open: every name below it is resolved against its descriptor, never by
    re-reading a path. ``path`` is where it was opened, for messages and for naming what was
    written. Use it as a context manager; it closes its descriptor."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def __enter__(self) -> OpenDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def descend(self, parts: Iterable[str], *, create: bool = False) -> OpenDir:
        """The sub-folder ``parts`` below this one (each made when ``create``), reached without
        following a symbolic link: UnsafePathError for a link or for ``..``; NotADirectoryError
        for a file where a folder should be; FileNotFoundError when missing."""
        fd, path = os.dup(self.fd), self.path
        try:
            for part in parts:
                path = path / part
                child = _open_subdir(fd, part, path, create)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return OpenDir(fd, path)

    def name_max(self) -> int:
        """The longest name, in bytes, that this folder's filesystem takes."""
        try:
            return os.fpathconf(self.fd, "PC_NAME_MAX")
        except (OSError, ValueError):
            return 255

    def exists(self, name: str) -> bool:
        """Whether anything (a symbolic link included) has this name."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def open_regular(self, name: str) -> int:
        """A read-only descriptor on the regular file ``name``; never blocks, never follows a
        link: UnsafePathError for a link, FIFO, device, socket or folder."""
        path = self.path / name
        # Looked at before opening (opening a device can act on it) and after (it may have been
        # swapped in between); O_NONBLOCK keeps a FIFO swapped in between from blocking open().
        _refuse_irregular(os.stat(name, dir_fd=self.fd, follow_symlinks=False), path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _link_error(path) from None
            raise
        try:
            _refuse_irregular(os.fstat(fd), path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def create_temp(self, mode: int = 0o644) -> tuple[str, int]:
        """A new hidden temporary file here: (its name, a write-only descriptor)."""
        name = temp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return name, os.open(name, flags, mode, dir_fd=self.fd)

    def write_temp(self, data: bytes) -> str:
        """Write ``data`` to a new temporary file here, flushed to disk; returns its name."""
        name, fd = self.create_temp()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            self.unlink(name)
            raise
        finally:
            os.close(fd)
        return name

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def fsync(self) -> None:
        # Not every filesystem syncs a folder (SMB); the rename is still atomic.
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def publish(self, tmp: str, name: str, *, replace: bool) -> bool:
        """Give the temporary file ``tmp`` the name ``name`` in one step.

        With ``replace=False`` an existing ``name`` is left alone (and ``tmp`` kept) and False
        is returned. Hard links make that check atomic; on filesystems without them (some SMB
        and FAT mounts) the check and the rename are two steps.
        """
        if replace:
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            try:
                os.link(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd,
                        follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _LINKLESS:
                    raise
                if self.exists(name):
                    return False
                os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            self.unlink(tmp)
        self.fsync()
        return True

    def place(self, tmp: str, name: str, policy: str,
              before: Callable[[Path], None] = lambda path: None) -> str | None:
        """Publish ``tmp`` under ``name`` by collision policy: ``overwrite``, ``skip`` (None
        when the name is taken) or ``suffix`` (``-1``, ``-2``...). ``before(path)`` runs just
        before a name is published, e.g. to record it."""
        if policy == "overwrite":
            before(self.path / name)
            self.publish(tmp, name, replace=True)
            return name
        for candidate in (p.name for p in numbered(Path(name))):
            if self.exists(candidate):
                if policy == "skip":
                    return None
                continue
            before(self.path / candidate)
            if self.publish(tmp, candidate, replace=False):
                return candidate
            if policy == "skip":
                return None
        raise AssertionError("unreachable")

    def write(self, name: str, data: bytes, policy: str = "suffix",
              before: Callable[[Path], None] = lambda path: None) -> Path | None:
        """Write ``data`` under ``name`` here so that a file under the final name is always
        complete (see :meth:`place`); returns its path, None when skipped. A name longer than
        the filesystem allows fails (ENAMETOOLONG) before anything is written or announced."""
        if len(os.fsencode(name)) > self.name_max():
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), name)
        tmp = self.write_temp(data)
        try:
            placed = self.place(tmp, name, policy, before)
        finally:
            self.unlink(tmp)
        return None if placed is None else self.path / placed


def _open_subdir(fd: int, name: str, path: Path, create: bool) -> int:
    if name in ("", ".", "..") or "/" in name:
        raise UnsafePathError(errno.EINVAL, f"{path} is not a plain folder name", path)
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, dir_fd=fd)
    try:
        return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP) and _is_link(fd, name):
            raise _link_error(path) from None
        raise


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _link_error(path: Path) -> UnsafePathError:
    return UnsafePathError(errno.ELOOP, f"{path} is a symbolic link (not followed)", path)


def _refuse_irregular(st: os.stat_result, path: Path) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise _link_error(path)
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a file")
    raise UnsafePathError(errno.EINVAL, f"{path} is not a regular file ({kind})", path)


def open_dir(path: Path, *, create: bool = False) -> OpenDir:
    """Open a folder the studio named (made when ``create``). Symbolic links in ``path`` itself
    are the studio's choice and are followed; nothing below it is (see :meth:`OpenDir.descend`)."""
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return OpenDir(os.open(path, _DIR_FLAGS), path)


def read_beneath(root: Path, rel_path: str) -> bytes:
    """The content of the regular file ``rel_path`` below ``root``, reached without following a
    symbolic link below ``root`` and without blocking. Raises UnsafePathError for a link, FIFO,
    device or socket on the way; FileNotFoundError when it is gone."""
    rel = PurePosixPath(rel_path)
    with open_dir(root) as top, top.descend(rel.parent.parts) as folder, \
            os.fdopen(folder.open_regular(rel.name), "rb") as fh:
        return fh.read()


def open_regular(path: Path) -> int:
    """A read-only descriptor on ``path`` if it is a regular file (see
    :meth:`OpenDir.open_regular`: the last name is not followed, a FIFO does not block)."""
    with open_dir(path.parent) as folder:
        return folder.open_regular(path.name)


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
    """Remove temporary files a crash left under ``root`` (this version's and older ones'),
    walking by descriptor so that no symbolic link below ``root`` is followed."""
    removed = []
    for folder, _dirs, files, dir_fd in os.fwalk(root):
        for name in files:
            if is_temp(Path(name)):
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
                removed.append(Path(folder) / name)
    return removed


def write_file(target: Path, data: bytes, policy: str = "suffix",
               before: Callable[[Path], None] = lambda path: None) -> Path | None:
    """Write ``data`` to a place the user named, so that a file under the final name is always
    complete (see :meth:`OpenDir.place`). Symbolic links in ``target.parent`` are followed: it
    is the user's own path. Output under a root a photo's name leads into goes through
    :func:`open_dir` and :meth:`OpenDir.descend` instead (see matting/publish.py)."""
    with open_dir(target.parent, create=True) as folder:
        return folder.write(target.name, data, policy, before)
