"""Where a job's cutout goes: the folder's template, mirroring the input's sub-folders."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path, PurePosixPath

from mattectl.config import WatchConfig, render_template, template_extension
from mattectl.errors import InputError
from mattectl.imageio.options import IMAGE_EXTENSIONS, OutputOptions


def with_extension(template: str, rendered: str, options: OutputOptions) -> str:
    """The rendered name with the extension of ``options.format``: kept when the template ends
    in it, swapped when it ends in another image extension (a rule chose another format),
    appended otherwise."""
    ext = template_extension(template)
    if ext is not None and options.accepts_extension(ext):
        return rendered
    if ext in IMAGE_EXTENSIONS:
        return f"{rendered[:-len(ext) - 1]}.{options.extension}"
    return f"{rendered}.{options.extension}"


def output_path(watch: WatchConfig, rel_path: str, model: str, day: date,
                options: OutputOptions | None = None) -> Path:
    """The cutout's path under ``watch.output``; never outside it, whatever the names hold."""
    rel = PurePosixPath(rel_path)
    rendered = render_template(watch.output_template, stem=rel.stem,
                               ext=rel.suffix.lstrip("."), name=rel.name, model=model, day=day,
                               folder=watch.name)
    name = with_extension(watch.output_template, rendered, options or watch.output_options)
    target = Path(os.path.normpath(watch.output / rel.parent / name))
    if watch.output not in target.parents:
        raise InputError(f"{rel_path}: output name {name!r} would land outside {watch.output}")
    return target
