"""`mattectl process`: a one-shot batch over files or folders through the daemon's own path:
the folder's model or rules, its naming and output settings, the same cutout bytes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path, PurePath
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mattectl.backends.cache import ModelCache, closing_models
from mattectl.cli.common import (
    ConfigOption,
    console,
    err_console,
    job_log_if_any,
    load_settings_or_defaults,
)
from mattectl.config import DEFAULT_EXTENSIONS, Settings, WatchConfig, cores_available
from mattectl.errors import ExitCode, InputError, MattectlError, ModelUnavailableError
from mattectl.imageio.options import OutputFormat
from mattectl.matting.naming import output_path
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, PhotoStages, Recipe
from mattectl.matting.planner import RulePlanner
from mattectl.matting.publish import publish_cutout
from mattectl.matting.stages import Outcome, StagedPipeline
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


def _folder(settings: Settings, name: str | None) -> WatchConfig | None:
    if name is None:
        return settings.watch[0] if settings.watch else None
    for watch in settings.watch:
        if watch.name == name:
            return watch
    known = ", ".join(w.name for w in settings.watch) or "none"
    raise InputError(f"no [[watch]] folder named '{name}' in the config (folders: {known})")


def _planner(settings: Settings, models: ModelCache) -> RulePlanner:
    """The daemon's planner, with the latencies its job log has learned when there is one, so
    that a latency budget decides as it would in the daemon."""
    samples: list = []
    if (repo := job_log_if_any(settings)) is not None:
        try:
            samples = repo.recent_inference(2000)
        finally:
            repo.close()
    return RulePlanner.create(models, settings.daemon.rules_dir,
                              lambda limit: samples[:limit])


def _check_available(recipe: Recipe, models: ModelCache, planner: RulePlanner) -> None:
    if recipe.rules is not None:
        problem = planner.folder_problem(recipe.rules.preset)
        if problem is not None:
            raise ModelUnavailableError(problem)
        return
    found = models.availability(recipe.model)
    if not found.ok:
        raise ModelUnavailableError(found.reason)


def _decision_line(photo: Photo, cutout: Cutout) -> str:
    decision = cutout.decision or {}
    crop = " on a crop" if decision.get("crop") else ""
    rule = decision.get("rule") or "last resort"
    return f"{photo.name}: {cutout.model}{crop} (rule {rule}: {decision.get('why', '')})"


def finishing_threads() -> int:
    """Photos finished (edges, then encoding) at once by ``process``: one per core, up to 8.
    The edge finishing is one core's work for each photo (matting: seconds a photo); the memory
    budget (``daemon.max_decode_mb``, the solver's share included) still bounds them. On the
    9 hairgt photos with the default matting, 2 cores: 28.9 s with one, 21.4 s with two."""
    return max(1, min(cores_available(), 8))


def process(
    paths: Annotated[list[Path], typer.Argument(help="Photos or folders of photos.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cutouts.")],
    folder: Annotated[str | None, typer.Option(
        "--folder", help="Process as this [[watch]] folder of the config does (its model or "
        "rules, naming and output settings) [default: the first folder]")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="A fixed model instead of the folder's model or rules")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing cutouts.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Photos per inference call for a fixed "
                                       "model (a GPU likes 4-16).")] = 1,
    output_format: Annotated[OutputFormat | None, typer.Option(
        "--format", "-f", help="Output format [default: the folder's, or png]")] = None,
    trim: Annotated[bool | None, typer.Option(
        help="Crop to the subject [default: the folder's, or no]")] = None,
    config: ConfigOption = None,
) -> None:
    """Cut out every photo now, as the daemon would, without the daemon; exit 1 if any failed.

    Each photo takes the daemon's path (the folder's model, or its rules deciding per photo,
    then its naming under --out). Reading and decoding the next photos and finishing and
    encoding the last ones run on worker threads while the model works: one finishing thread
    per CPU core (up to 8), since matting a photo's edges takes one core for seconds. (Two
    photos whose cutouts take the same name, a.jpg and a.png, get it and its -1 in the order
    they finish.)
    """
    settings = load_settings_or_defaults(config)
    watch = _folder(settings, folder)
    recipe = Recipe.of(watch) if watch is not None else Recipe()
    if model is not None:
        recipe = replace(recipe, model=model, rules=None)
    recipe = replace(recipe, options=replace(
        recipe.options, format=output_format or recipe.options.format,
        trim=recipe.options.trim if trim is None else trim))
    models = ModelCache(settings.models, settings.models_dir)
    planner = _planner(settings, models)
    _check_available(recipe, models, planner)
    pipeline = PhotoPipeline(models, max_pixels=settings.daemon.max_pixels,
                             min_side=settings.daemon.min_side, planner=planner,
                             max_decode_mb=settings.daemon.max_decode_mb)
    policy = "overwrite" if overwrite else "suffix"
    naming = watch.model_copy(update={"output": out}) if watch is not None else None

    def deliver(photo: Photo, cutout: Cutout) -> Cutout:
        rel = PurePath(photo.name)
        target = (output_path(naming, photo.name, cutout.model, date.today(), cutout.options)
                  if naming is not None else out / rel.with_suffix(f".{cutout.extension}"))
        publish_cutout(cutout.data, target, root=out, policy=policy, name=photo.name)
        return cutout

    photos = [Photo(rel.as_posix(), path=path) for path, rel in collect_inputs(paths)]
    failures: list[tuple[Photo, str]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    # The model (and its inference process, see models.isolation) ends with the command.
    with Progress(*columns, console=err_console) as progress, closing_models(models):
        task = progress.add_task("matting", total=len(photos))

        def done(outcome: Outcome[Photo, Cutout]) -> None:
            error = outcome.error
            if isinstance(error, MattectlError):
                failures.append((outcome.item, str(error)))
            elif error is not None:
                logger.error("%s: unexpected error", outcome.item.name, exc_info=error)
                failures.append((outcome.item, f"internal error: {type(error).__name__}: "
                                               f"{error}"))
            elif outcome.result is not None and recipe.rules is not None:
                console.print(_decision_line(outcome.item, outcome.result), highlight=False,
                              markup=False)
            progress.update(task, advance=1, description=outcome.item.name)

        stages = PhotoStages(pipeline, recipe, deliver)
        with StagedPipeline(stages, done, batch=batch, encode_workers=finishing_threads()) \
                as staged:
            for photo in photos:
                staged.submit(photo)
    written = len(photos) - len(failures)
    console.print(f"{written} cutout(s) written to {out}, {len(failures)} failed", highlight=False)
    for photo, why in failures:
        err_console.print(f"[red]failed[/] {photo.path}: {why}", highlight=False)
    if failures:
        raise typer.Exit(ExitCode.FAILURE)
