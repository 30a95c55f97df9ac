"""`mattectl process`: a one-shot batch over files or folders through the daemon's pipeline."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePath
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mattectl.backends.cache import ModelCache, closing_models
from mattectl.cli.common import ConfigOption, console, err_console, load_settings_or_defaults
from mattectl.config import DEFAULT_EXTENSIONS
from mattectl.errors import ExitCode, MattectlError, ModelUnavailableError
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.jobs.flood import MattingStages, Photo, Written
from mattectl.jobs.stages import Outcome, StagedPipeline
from mattectl.watch.filters import ignore_reason

logger = logging.getLogger(__name__)


def collect_inputs(paths: list[Path]) -> Iterator[tuple[Path, PurePath]]:
    """``(file, output-relative path)`` for each photo; folders are walked, their structure kept."""
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    rel = (Path(folder) / name).relative_to(path)
                    if ignore_reason(rel, DEFAULT_EXTENSIONS) is None:
                        yield Path(folder) / name, rel
        else:
            yield path, PurePath(path.name)


def process(
    paths: Annotated[list[Path], typer.Argument(help="Photos or folders of photos.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cutouts.")],
    model: Annotated[str | None, typer.Option("--model", "-m",
                                              help="Model [default: first folder's, or u2netp]")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing cutouts.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Photos per inference call (a GPU likes "
                                       "4-16).")] = 1,
    output_format: Annotated[OutputFormat | None, typer.Option(
        "--format", "-f", help="Output format [default: first folder's, or png]")] = None,
    trim: Annotated[bool | None, typer.Option(
        help="Crop to the subject [default: first folder's, or no]")] = None,
    config: ConfigOption = None,
) -> None:
    """Cut out every photo now, without the daemon; exit 1 if any photo failed.

    Reading and decoding the next photos and encoding and writing the last ones run on worker
    threads while the model works, so a folder goes through at close to the model's own speed.
    """
    settings = load_settings_or_defaults(config)
    model = model or (settings.watch[0].model if settings.watch else "u2netp")
    options = settings.watch[0].output_options if settings.watch else OutputOptions()
    options = replace(options, format=output_format or options.format,
                      trim=options.trim if trim is None else trim)
    models = ModelCache(settings.models, settings.models_dir)
    found = models.availability(model)
    if not found.ok:
        raise ModelUnavailableError(found.reason)
    backend = models.get(model)
    backend.load()
    stages = MattingStages(backend, max_pixels=settings.daemon.max_pixels,
                           min_side=settings.daemon.min_side,
                           collision="overwrite" if overwrite else "suffix", options=options)
    photos = [Photo(str(rel), path=path, target=out / rel.with_suffix(f".{options.extension}"))
              for path, rel in collect_inputs(paths)]
    failures: list[tuple[Photo, str]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    # The model (and its inference process, see models.isolation) ends with the command.
    with Progress(*columns, console=err_console) as progress, closing_models(models):
        task = progress.add_task("matting", total=len(photos))

        def done(outcome: Outcome[Photo, Written]) -> None:
            error = outcome.error
            if isinstance(error, MattectlError):
                failures.append((outcome.item, str(error)))
            elif error is not None:
                logger.error("%s: unexpected error", outcome.item.name, exc_info=error)
                failures.append((outcome.item, f"internal error: {type(error).__name__}: "
                                               f"{error}"))
            progress.update(task, advance=1, description=outcome.item.name)

        with StagedPipeline(stages, done, batch=batch) as pipeline:
            for photo in photos:
                pipeline.submit(photo)
    written = len(photos) - len(failures)
    console.print(f"{written} cutout(s) written to {out}, {len(failures)} failed", highlight=False)
    for photo, why in failures:
        err_console.print(f"[red]failed[/] {photo.path}: {why}", highlight=False)
    if failures:
        raise typer.Exit(ExitCode.FAILURE)
