"""`mattectl status`: what the daemon is doing, at a glance."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mattectl.cli.common import ConfigOption, JsonOption, console, load_settings, open_repository
from mattectl.errors import ExitCode
from mattectl.overview import Overview, build_overview


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


HEADS = {"stale": "not running"}  # the state's word, as a person reads it


def _render(ov: Overview) -> None:
    colour = "green" if ov.healthy else ("yellow" if ov.state == "running" else "red")
    head = f"[bold {colour}]{HEADS.get(ov.state, ov.state)}[/]"
    if ov.state == "running":
        head += f"  {ov.instance}, since {ov.since}, heartbeat {ov.heartbeat_age_s:.0f} s ago"
    elif ov.instance:
        head += f"  (last seen: {ov.instance}, heartbeat {ov.heartbeat_age_s:.0f} s ago)"
    console.print(head, highlight=False)
    for problem in ov.problems:
        console.print(f"[yellow]! {problem}[/]", highlight=False)

    folders = Table("folder", "model", "queued", "waiting", "running", "done", "failed", "input",
                    "output", title="Folders", title_justify="left")
    for f in ov.folders:
        running = f"{f.interrupted} interrupted" if f.interrupted else str(f.running)
        folders.add_row(f.name + (" (paused)" if f.paused else ""), f.model, str(f.queued),
                        str(f.waiting), running, str(f.done), str(f.failed), f.input, f.output)
    console.print(folders)

    models = Table("model", "backend", "jobs", "p50 inference", "p95 inference", "device",
                   "state", title="Models", title_justify="left")
    for m in ov.models:
        state = ("missing" if m.available is False else
                 "loaded" if m.loaded else "idle" if m.available else "-")
        models.add_row(m.name, m.backend or "-", str(m.jobs), _ms(m.p50_ms), _ms(m.p95_ms),
                       ", ".join(m.devices) or "-", state)
    console.print(models)

    for job in ov.running_jobs:
        console.print(f"working on job {job['job']}: {job['file']} ({job['folder']})",
                      highlight=False)
    for job in ov.interrupted_jobs:
        console.print(f"interrupted: job {job['job']}: {job['file']} ({job['folder']}), "
                      "re-queued when the daemon starts", highlight=False)
    if ov.pending_files:
        console.print(f"{ov.pending_files} file(s) arriving (waiting until they are stable)")
    if ov.last_output:
        lo = ov.last_output
        console.print(f"last output: {lo['output']} (job {lo['job']}, {lo['finished_at']})",
                      highlight=False)


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show whether the daemon runs, per-folder job counts, models and timings.

    Exit code 0 when the daemon runs with no problem, 1 when it runs with one (a folder
    paused, a job hung, a refused reload, a job log it cannot write), 3 when it is not running,
    6 when its process is alive but does not respond.
    """
    settings = load_settings(config)
    repo = open_repository(settings)
    try:
        ov = build_overview(settings, repo)
    finally:
        repo.close()
    if as_json:
        print(json.dumps(ov.to_dict(), indent=2))
    else:
        _render(ov)
    if ov.state == "not responding":
        raise typer.Exit(ExitCode.NOT_RESPONDING)
    if ov.state != "running":
        raise typer.Exit(ExitCode.NOT_RUNNING)
    if not ov.healthy:
        raise typer.Exit(ExitCode.FAILURE)
