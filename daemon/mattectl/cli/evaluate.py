"""`mattectl eval`: how close each model's alpha comes to the truth, on your own photos."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mattectl.backends.cache import ModelCache, closing_models
from mattectl.cli.common import ConfigOption, console, err_console, load_settings_or_defaults
from mattectl.errors import ExitCode
from mattectl.evaluation import summary
from mattectl.evaluation.finish import finish_matters
from mattectl.evaluation.metrics import METRICS, Region
from mattectl.evaluation.presets import PresetMatter
from mattectl.evaluation.report import render, write_report
from mattectl.evaluation.runner import ImageResult, choose_models, evaluate, find_samples
from mattectl.fsutil import write_file
from mattectl.matting.pipeline import PhotoPipeline
from mattectl.matting.planner import RulePlanner


def _keys(region: Region) -> list[str]:
    return [f"{key}_{region}" for key in METRICS]


def _images_table(results: list[ImageResult], backends: list[str], region: Region) -> Table:
    table = Table(title=f"per image, region {region} (worst first)")
    for column in ("image", "backend", *(m.label for m in METRICS.values()), "ms"):
        table.add_column(column, justify="left" if column in ("image", "backend") else "right")
    for result in summary.worst_first(results, backends):
        if result.error:
            table.add_row(result.sample.name, "-", f"[red]{result.error}[/]")
            continue
        for b in backends:
            score = result.scores[b]
            if score.error:
                table.add_row(result.sample.name, b, f"[red]{score.error}[/]")
                continue
            label = f"{b}\n{score.rule}" if score.rule else b
            image = result.sample.name
            if b == backends[0] and result.truth_reading:
                image += f"\n(truth: {result.truth_reading})"
            table.add_row(image, label,
                          *(f"{score.metrics[k]:.4g}" for k in _keys(region)),
                          f"{score.inference_ms:.0f}")
    return table


def _means_table(title: str, rows: dict[str, dict[str, float]], region: Region) -> Table:
    table = Table(title=f"{title}, region {region}")
    for column in ("", "images", *(m.label for m in METRICS.values()), "holes", "ms"):
        table.add_column(column, justify="left" if not column else "right")
    for name, means in rows.items():
        table.add_row(name, f"{means['images']:.0f}",
                      *(f"{means[k]:.4g}" for k in _keys(region)),
                      f"{means.get('holes', 0):.0f}", f"{means['inference_ms']:.0f}")
    return table


def _save_cutouts(folder: Path, result: ImageResult, matters: dict[str, Any]) -> None:
    for matter in matters.values():
        cutout = getattr(matter, "last_cutout", None)
        if cutout is not None and not result.error:
            target = folder / f"preset-{matter.preset}" / f"{result.sample.name}.{cutout.extension}"
            write_file(target, cutout.data, "overwrite")


def _legend() -> str:
    lines = ["regions: image = every pixel; band = truth strictly between 0 and 1 (n/a: empty)"]
    lines += [f"{info.label}: {info.unit}" for info in METRICS.values()]
    lines.append("holes: interior holes, summed over the images (regions of 16+ pixels where "
                 "the truth is opaque, 3 pixels in, and the prediction under 0.5)")
    return "\n".join(lines)


def eval_command(
    images: Annotated[Path, typer.Option(help="Folder of photos.")],
    alphas: Annotated[Path, typer.Option(help="Folder of true alpha mattes, same file stems.")],
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Model to evaluate (repeat for several) [default: every "
        "installed model, unless --preset is given].")] = None,
    preset: Annotated[list[str] | None, typer.Option(
        "--preset", "-p", help="Rules preset to evaluate as the daemon would run it, each "
        "photo through the model its rules choose (repeat for several).")] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    cutouts: Annotated[Path | None, typer.Option(
        help="Write each preset's cutouts here (DIR/preset-NAME/PHOTO.png), the files a folder "
        "with that preset writes.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")]
    = None,
    finish: Annotated[list[str] | None, typer.Option(
        "--finish", "-f", help="Score each model's alpha as a folder finishes it: a resampling "
        "(official, lanczos), an edge mode (matting, guided, clean, off) and holes or no-holes, "
        "comma-separated (left out: the config's resample, matting, holes); repeat for several "
        "side by side; 'grid' for all of them.")] = None,
    config: ConfigOption = None,
) -> None:
    """Score each model's alpha against the truth: SAD, MSE, MAE, Grad, Conn, interior holes."""
    settings = load_settings_or_defaults(config)
    models = ModelCache(settings.models, settings.models_dir)
    backends: dict[str, Any] = {}
    extra_caches: list[ModelCache] = []
    if finish:
        for name in choose_models(models, backend):
            matters, caches = finish_matters(settings.models, settings.models_dir, name, finish)
            backends.update(matters)
            extra_caches += caches
    elif backend or not preset:
        backends.update({name: models.get(name) for name in choose_models(models, backend)})
    if preset:
        planner = RulePlanner.create(models, settings.daemon.rules_dir)
        pipeline = PhotoPipeline(models, max_pixels=settings.daemon.max_pixels,
                                 min_side=settings.daemon.min_side, planner=planner,
                                 max_decode_mb=settings.daemon.max_decode_mb)
        for name in preset:
            planner.presets.get(name)  # an unknown or invalid preset fails here, by name
            matter = PresetMatter(pipeline, name)
            backends[matter.name] = matter
    names = list(backends)
    samples = find_samples(images, alphas)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with ExitStack() as stack, Progress(*columns, console=err_console) as progress:
        for cache in (models, *extra_caches):
            stack.enter_context(closing_models(cache))
        task = progress.add_task("evaluating", total=len(samples))
        def done(result: ImageResult) -> None:
            if cutouts is not None:
                _save_cutouts(cutouts, result, backends)
            progress.advance(task)

        results = evaluate(samples, backends, progress=done)
        devices = {name: b.device or "?" for name, b in backends.items()}

    means = {b: summary.mean_scores(results, b) for b in names}
    for region in Region:
        console.print(_images_table(results, names, region))
    for region in Region:
        console.print(_means_table("means per backend", means, region))
    for tag in summary.tags_of(results):
        rows = {f"{value} · {b}": m for b in names
                for value, m in summary.group_means(results, b, tag).items()}
        console.print(_means_table(f"means by {tag}", rows, Region.IMAGE))
    console.print(_legend(), highlight=False)
    readings = Counter(r.truth_reading for r in results if r.truth_reading)
    if readings:
        console.print("truth read as: " + ", ".join(f"{n} x {how}" for how, n in
                                                     readings.most_common()), highlight=False)
    if json_out:
        data = summary.to_json(results, names, devices)
        write_file(json_out, json.dumps(data, indent=1).encode(), "overwrite")
    if report:
        write_report(report, render(results=results, backends=names, devices=devices))
        console.print(f"report: {report}", highlight=False)
    failed = [r for r in results if r.error or any(s.error for s in r.scores.values())]
    if failed:
        err_console.print(f"[red]{len(failed)} image(s) could not be scored[/]")
        raise typer.Exit(ExitCode.FAILURE)
