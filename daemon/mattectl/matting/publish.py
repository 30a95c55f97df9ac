"""The last step of the path: the cutout written atomically under its folder's output root."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from mattectl.errors import OutputError, OutputNameError
from mattectl.fsutil import NAME_ERRNOS, UnsafePathError, open_dir


def publish_cutout(data: bytes, target: Path, *, root: Path, policy: str,
                   name: str, before: Callable[[Path], None] = lambda path: None) -> Path | None:
    """Write ``data`` to ``target`` (under ``root``) by ``policy`` (suffix, overwrite, skip):
    complete or absent, never outside ``root``. Returns the path written, None when skipped.
    ``before`` hears of the final name before it appears (the job log records it there).

    ``root`` is opened once; the folders below it are made and entered by descriptor without
    following a symbolic link, and the temporary file is written and renamed inside the folder
    so opened, so a folder swapped for a link meanwhile cannot redirect anything.
    Raises OutputNameError when no retry can help (a symbolic link below ``root``, a name too
    long, a folder in the way), OutputError when writing fails otherwise (disk full...).
    """
    try:
        rel = target.relative_to(root)
    except ValueError:
        raise OutputNameError(f"{name}: {target} is not inside {root}") from None
    try:
        top = open_dir(root, create=True)
    except OSError as exc:  # the output folder itself: the studio's to fix, so retried
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with top, top.descend(rel.parent.parts, create=True) as folder:
            return folder.write(rel.name, data, policy, before=before)
    except UnsafePathError as exc:
        raise OutputNameError(f"{name}: {target.parent} leads outside {root}: "
                              f"{exc.strerror}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENAMETOOLONG:
            reason += f" ({len(os.fsencode(rel.name))} bytes)"
        if exc.errno in NAME_ERRNOS:
            raise OutputNameError(f"{name}: cannot write {target}: {reason.lower()} "
                                  "(no retry can change that)") from exc
        raise OutputError(f"cannot write {target}: {reason}") from exc
