"""The pictures the page shows, found from a job id only: never from a path in a URL.

A job's original is read only when its recorded path lies below one of its folder's configured
roots (drop, processed or failed folder), with no ``..`` on the way and no symbolic link below
the root (:func:`mattectl.fsutil.read_beneath`); anything else is refused as not found.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from mattectl.config import Settings
from mattectl.errors import InputError
from mattectl.fsutil import inside, read_beneath
from mattectl.imageio.preview import encode_jpeg, fit_size, resize, thumbnail_webp
from mattectl.imageio.read import decode
from mattectl.store.repository import Job

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 1600  # the original and the cutout, as big as a screen shows them


def original_location(settings: Settings, job: Job) -> tuple[Path, str] | None:
    """``(root, path below it)`` of the job's original, or None when it is not inside its
    folder's configured roots (the folder was removed from the config, or the row lies)."""
    try:
        watch = settings.watch_named(job.folder)
    except KeyError:
        return None
    path = job.input_path
    roots = [d for d in (watch.input, watch.processed_dir, watch.failed_dir) if d is not None]
    for root in sorted(roots, key=lambda d: len(d.parts), reverse=True):  # the nearest first
        if not path.is_absolute() or root not in path.parents:
            continue
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if ".." in rel.parts or not inside(path, root):
            return None
        return root, rel.as_posix()
    return None


def original_preview(settings: Settings, job: Job) -> bytes | None:
    """A JPEG of the job's original, upright, at most PREVIEW_SIDE pixels; None when it cannot
    be found there or read (gone, moved, a link, not an image)."""
    located = original_location(settings, job)
    if located is None:
        return None
    try:
        data = read_beneath(*located)
        image = decode(data, name=job.rel_path, max_pixels=settings.daemon.max_pixels)
    except (OSError, InputError) as exc:
        logger.debug("job %d: no preview of the original: %s", job.id, exc)
        return None
    width, height = fit_size(image.width, image.height, PREVIEW_SIDE)
    return encode_jpeg(resize(image.rgb, width, height))


def cutout_location(settings: Settings, job: Job) -> tuple[Path, str] | None:
    """``(output folder, path below it)`` of the job's cutout, or None when it has none there."""
    try:
        root = settings.watch_named(job.folder).output
    except KeyError:
        return None
    path = job.output_path
    if path is None or not path.is_absolute() or root not in path.parents:
        return None
    rel = PurePosixPath(path.relative_to(root).as_posix())
    if ".." in rel.parts or not inside(path, root):
        return None
    return root, rel.as_posix()


def cutout_preview(settings: Settings, job: Job) -> bytes | None:
    """A WebP of the job's cutout, its transparency kept, at most PREVIEW_SIDE pixels (the one
    page that shows a single job reads the cutout; lists show thumbnails)."""
    located = cutout_location(settings, job)
    if located is None:
        return None
    try:
        return thumbnail_webp(read_beneath(*located), PREVIEW_SIDE, quality=90)
    except (OSError, ValueError) as exc:
        logger.debug("job %d: no preview of the cutout: %s", job.id, exc)
        return None
