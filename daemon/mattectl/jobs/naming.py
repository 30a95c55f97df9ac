"""Where a job's cutout goes: the folder's template, mirroring the input's sub-folders."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path, PurePosixPath

from mattectl.config import WatchConfig, render_template
from mattectl.errors import InputError


def output_path(watch: WatchConfig, rel_path: str, model: str, day: date) -> Path:
    """The cutout's path under ``watch.output``; never outside it, whatever the names hold."""
    rel = PurePosixPath(rel_path)
    name = render_template(watch.output_template, stem=rel.stem, ext=rel.suffix.lstrip("."),
                           name=rel.name, model=model, day=day, folder=watch.name)
    target = Path(os.path.normpath(watch.output / rel.parent / name))
    if watch.output not in target.parents:
        raise InputError(f"{rel_path}: output name {name!r} would land outside {watch.output}")
    return target
