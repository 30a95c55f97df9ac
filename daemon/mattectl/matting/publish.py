"""The last step of the path: the cutout written atomically under its folder's output root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mattectl.errors import InputError, OutputError
from mattectl.fsutil import inside, write_file


def publish_cutout(data: bytes, target: Path, *, root: Path, policy: str,
                   name: str, before: Callable[[Path], None] = lambda path: None) -> Path | None:
    """Write ``data`` to ``target`` (under ``root``) by ``policy`` (suffix, overwrite, skip):
    complete or absent, never outside ``root``. Returns the path written, None when skipped.
    ``before`` hears of the final name before it appears (the job log records it there).
    Raises InputError when ``target`` leads outside ``root``, OutputError when writing fails.
    """
    try:
        # Checked before mkdir too, so that a symbolic link in the output tree cannot make
        # us create folders elsewhere; and after, for a link made in between.
        for _check in ("before", "after"):
            if not inside(target.parent, root):
                raise InputError(f"{name}: {target.parent} leads outside {root} "
                                 "(a symbolic link?)")
            target.parent.mkdir(parents=True, exist_ok=True)
        return write_file(target, data, policy, before=before)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
