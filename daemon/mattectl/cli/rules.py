"""`mattectl rules`: validate the rule presets; explain what they decide for a photo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mattectl.backends.cache import ModelCache, closing_models
from mattectl.checks import load_preset  # model names checked against the catalog
from mattectl.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    job_log_if_any,
    load_settings_or_defaults,
)
from mattectl.cli.output import print_labelled
from mattectl.config import Settings, WatchConfig
from mattectl.errors import ConfigError, ExitCode
from mattectl.imageio.read import decode
from mattectl.matting.planner import FolderRules, RulePlanner
from mattectl.rules.presets import find_presets, preset_dirs
from mattectl.rules.report import describe
from mattectl.store.repository import JobRepository

app = typer.Typer(help="Rule presets: check them, explain their decisions.",
                  no_args_is_help=True)


@app.command("check")
def check(config: ConfigOption = None) -> None:
    """Validate every preset (daemon.rules_dir, then the shipped ones). Exit 2 on a problem."""
    settings = load_settings_or_defaults(config)
    dirs = preset_dirs(settings.daemon.rules_dir)
    presets = find_presets(dirs)
    bad = 0
    for name, path in presets.items():
        try:
            preset = load_preset(path)
        except ConfigError as exc:
            err_console.print(f"[red]invalid[/] {exc}", highlight=False, soft_wrap=True)
            bad += 1
            continue
        rules = preset.ruleset.rules
        console.print(f"[green]ok[/] {name}: {len(rules)} rule(s) "
                      f"({', '.join(r.name for r in rules)}); models "
                      f"{', '.join(preset.ruleset.models)}; {path}", highlight=False,
                      soft_wrap=True)
    if not presets:
        err_console.print(f"no presets found in {', '.join(map(str, dirs)) or 'any folder'}")
        bad += 1
    if bad:
        raise typer.Exit(ExitCode.USAGE)


def _usage(message: str) -> NoReturn:
    err_console.print(f"error: {message}", highlight=False, markup=False)
    raise typer.Exit(ExitCode.USAGE)


def _watch(settings: Settings, folder: str | None) -> WatchConfig | None:
    if folder is None:
        return None
    try:
        return settings.watch_named(folder)
    except KeyError:
        known = ", ".join(w.name for w in settings.watch) or "none"
        _usage(f"no [[watch]] folder named '{folder}' (known: {known})")


def _rel_path(image: Path, watch: WatchConfig | None) -> str:
    path = image.resolve()
    if watch is not None and path.is_relative_to(watch.input):
        return path.relative_to(watch.input).as_posix()
    return image.name


def _job_log(settings: Settings) -> JobRepository | None:
    # Expected latencies come from the daemon's job log when there is one; it is only read.
    return job_log_if_any(settings)


@app.command("explain")
def explain(
    image: Annotated[Path, typer.Argument(help="The photo to decide for.", exists=True,
                                          dir_okay=False)],
    folder: Annotated[str | None, typer.Option(
        "--folder", "-f", help="Decide as this [[watch]] folder would (its preset and budget).")]
    = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="Preset to use [default: the folder's, else 'default'].")] = None,
    budget: Annotated[float | None, typer.Option(
        "--budget", min=1, help="Latency budget in ms [default: the folder's].")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the facts about a photo, each rule's outcome and the decision. Writes nothing."""
    settings = load_settings_or_defaults(config)
    watch = _watch(settings, folder)
    if watch is not None and watch.rules is None and preset is None:
        _usage(f"folder '{watch.name}' uses a fixed model ({watch.model}), no preset; add "
               "--preset NAME to see what one would decide")
    rules = FolderRules(
        preset=preset or (watch.rules if watch else None) or "default",
        folder=watch.name if watch else "-",
        latency_budget_ms=budget or (watch.latency_budget_ms if watch else None))
    decoded = decode(image.read_bytes(), name=str(image), max_pixels=settings.daemon.max_pixels)
    models = ModelCache(settings.models, settings.models_dir)
    repo = _job_log(settings)
    planner = RulePlanner.create(models, settings.daemon.rules_dir,
                                 repo.recent_inference if repo is not None else None)
    try:
        with closing_models(models):
            record = planner.explain(decoded.rgb, rules, _rel_path(image, watch)).record()
    finally:
        if repo is not None:
            repo.close()
    if as_json:
        print(json.dumps(record, indent=2))
        return
    print_labelled(console, describe(record), 9)
