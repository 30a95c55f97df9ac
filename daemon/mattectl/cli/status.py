"""`mattectl status`: what the daemon is doing, at a glance."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mattectl.cli.common import ConfigOption, JsonOption, console, load_settings, open_repository
from mattectl.cli.output import (
    Column,
    Fit,
    PathCell,
    print_message,
    print_table,
    shorten_left,
)
from mattectl.errors import ExitCode
from mattectl.overview import ModelOverview, Overview, build_overview, when

LOW_SHOWN = 5  # low-confidence cutouts listed by name


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


HEADS = {"stale": "not running"}  # the state's word, as a person reads it
# At 80 columns the counts stay whole; the folders' paths are shortened from the left, and the
# model's backend and precision are the first to go.
FOLDER_COLUMNS = [
    Column("folder"), Column("model"), Column("queued"), Column("waiting"), Column("running"),
    Column("done"), Column("failed"), Column("input", Fit.PATH, drop=2, min_width=10),
    Column("output", Fit.PATH, drop=1, min_width=10)]
HOST_COLUMNS = [
    Column("host"), Column("state"), Column("heartbeat"), Column("running"),
    Column("device", drop=2), Column("models", drop=1), Column("version", drop=3)]
MODEL_COLUMNS = [
    Column("model"), Column("backend", drop=2), Column("jobs"), Column("p50 inference"),
    Column("p95 inference", drop=3), Column("device"), Column("precision", drop=1),
    Column("state")]


def _state(m: ModelOverview) -> str:
    return ("missing" if m.available is False else
            "loaded" if m.loaded else "idle" if m.available else "-")


def _render(ov: Overview) -> None:
    colour = "green" if ov.healthy else ("yellow" if ov.state == "running" else "red")
    head = f"[bold {colour}]{HEADS.get(ov.state, ov.state)}[/]"
    if ov.state == "running":
        workers = f", {ov.workers} workers" if ov.workers else ""
        head += (f"  {ov.instance}, since {when(ov.since)}{workers}, "
                 f"heartbeat {ov.heartbeat_age_s:.0f} s ago")
    elif ov.instance:
        head += f"  (last seen: {ov.instance}, heartbeat {ov.heartbeat_age_s:.0f} s ago)"
    console.print(head, highlight=False)
    for problem in ov.problems:  # plain text: a path or a key may hold brackets
        print_message(console, f"! {problem}")

    console.print("Folders", style="bold", highlight=False)
    print_table(console, FOLDER_COLUMNS, [
        [f.name + (" (paused)" if f.paused else ""), f.model, str(f.queued), str(f.waiting),
         f"{f.interrupted} interrupted" if f.interrupted else str(f.running), str(f.done),
         str(f.failed), PathCell(f.input), PathCell(f.output)] for f in ov.folders])
    if len(ov.hosts) > 1 or any(h.state != "up" for h in ov.hosts):
        console.print("Workstations", style="bold", highlight=False)
        print_table(console, HOST_COLUMNS, [
            [h.name, h.state, f"{h.heartbeat_age_s:.0f} s ago",
             f"{h.leased} waiting for the lease" if h.leased else str(h.running), h.device,
             ", ".join(h.models) or "-", h.version] for h in ov.hosts])
    console.print("Models", style="bold", highlight=False)
    print_table(console, MODEL_COLUMNS, [
        [m.name, m.backend or "-", str(m.jobs), _ms(m.p50_ms), _ms(m.p95_ms),
         ", ".join(m.devices) or "-", m.precision or "-", _state(m)] for m in ov.models])

    for job in ov.running_jobs:
        print_message(console, f"working on job {job['job']}: {job['file']} ({job['folder']})")
    for job in ov.interrupted_jobs:
        print_message(console, f"interrupted: job {job['job']}: {job['file']} "
                               f"({job['folder']}), re-queued when the daemon starts")
    if ov.pending_files:
        print_message(console, f"{ov.pending_files} file(s) arriving (waiting until they are "
                               "stable)")
    if ov.last_output:
        lo, label = ov.last_output, "last output: "
        path = str(lo["output"])
        if console.is_terminal:  # a path is never wrapped: on a screen, its end says most
            path = shorten_left(path, console.width - len(label))
        print_message(console, f"{label}{path} (job {lo['job']}, {when(lo['finished_at'])})")
    for job in ov.low_confidence[:LOW_SHOWN]:
        print_message(console, f"low confidence {job['confidence']:.2f}: job {job['job']}: "
                               f"{job['file']} ({job['folder']}): check the cutout")
    if len(ov.low_confidence) > LOW_SHOWN:
        print_message(console, f"... and {len(ov.low_confidence) - LOW_SHOWN} more "
                               "low-confidence cutout(s) (mattectl status --json)")


def status(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    host: Annotated[str | None, typer.Option(
        "--host", help="The workstation to report on (default: this one); the queue is the "
                       "whole studio's.")] = None,
) -> None:
    """Show whether the daemon runs, per-folder job counts, models and timings.

    Exit code 0 when the daemon runs with no problem, 1 when it runs with one (a folder
    paused, a job hung, a refused reload, a job log it cannot write), 3 when it is not running,
    6 when its process is alive but does not respond.
    """
    settings = load_settings(config)
    repo = open_repository(settings)
    try:
        ov = build_overview(settings, repo, host)
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
