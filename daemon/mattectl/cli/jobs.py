"""`mattectl jobs`: list, inspect and retry jobs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mattectl.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    load_settings,
    open_repository,
)
from mattectl.cli.output import Column, Fit, PathCell, print_table
from mattectl.errors import ExitCode
from mattectl.matting.confidence import LOW_CONFIDENCE
from mattectl.rules.report import describe
from mattectl.store.status import JobStatus

app = typer.Typer(help="List, inspect and retry jobs.", no_args_is_help=True)

# At 80 columns: id, folder, status and (up to 30 characters) the file whole, the reason or the
# output beside them; the timings, then the model, left out first.
JOB_COLUMNS = (
    Column("id"), Column("folder"), Column("file", Fit.PATH, min_width=30), Column("status"),
    Column("model", drop=1), Column("inference", drop=3), Column("total", drop=4),
    Column("finished", drop=2), Column("error / output", Fit.WRAP, min_width=24),
)


@app.command("list")
def list_jobs(
    status: Annotated[list[JobStatus] | None, typer.Option("--status", "-s",
                                                           help="Repeatable.")] = None,
    folder: Annotated[str | None, typer.Option("--folder", "-f")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The most recent jobs, newest first."""
    repo = open_repository(load_settings(config))
    try:
        jobs = repo.list(status=status, folder=folder, limit=limit)
    finally:
        repo.close()
    if as_json:
        print(json.dumps([j.to_dict() for j in jobs], indent=2))
        return
    rows = [[str(j.id), j.folder, j.rel_path, j.status.value, j.model or "-",
             f"{j.inference_ms:.0f} ms" if j.inference_ms else "-",
             f"{j.total_ms:.0f} ms" if j.total_ms else "-",
             j.finished_at.strftime("%Y-%m-%d %H:%M:%S") if j.finished_at else "-",
             j.error or (PathCell(j.output_path) if j.output_path else "")]
            for j in jobs]
    print_table(console, JOB_COLUMNS, rows)


@app.command("show")
def show(job_id: int, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Everything the job log knows about one job."""
    repo = open_repository(load_settings(config))
    try:
        job = repo.get(job_id)
    finally:
        repo.close()
    data = job.to_dict()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    width = max(map(len, data))
    for key, value in data.items():
        if key == "decision" and value:
            _show_decision(value, width)
            continue
        if key == "confidence" and value is not None:
            low = " (low: check the cutout)" if value < LOW_CONFIDENCE else ""
            console.print(f"{key:<{width}}  {value:.3f}{low}", highlight=False)
            continue
        shown = "-" if value is None else f"{value:.1f}" if isinstance(value, float) else value
        console.print(f"{key:<{width}}  {shown}", highlight=False)


def _show_decision(decision: dict, width: int) -> None:
    console.print(f"{'decision':<{width}}", highlight=False)
    for label, text in describe(decision):
        console.print(f"  {label:<{width - 2}}  {text}", highlight=False, markup=False,
                      soft_wrap=True)


@app.command("retry")
def retry(
    job_id: Annotated[int | None, typer.Argument(help="The job to queue again.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed job.")] = False,
    folder: Annotated[str | None, typer.Option("--folder", "-f",
                                               help="With --failed: only this folder.")] = None,
    config: ConfigOption = None,
) -> None:
    """Queue a failed (or done) job again; the running daemon picks it up."""
    if (job_id is None) == (not failed):
        err_console.print("give a job id or --failed")
        raise typer.Exit(ExitCode.USAGE)
    repo = open_repository(load_settings(config), writer=True)
    try:
        ids = repo.retry_failed(folder) if failed else [repo.retry(job_id).id]  # type: ignore[arg-type]
    finally:
        repo.close()
    console.print(f"re-queued {len(ids)} job(s): {', '.join(map(str, ids)) or '-'}")
