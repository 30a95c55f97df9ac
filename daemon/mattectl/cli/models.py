"""`mattectl models`: list, pull, verify and import model weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from mattectl.backends.catalog import MODELS
from mattectl.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    load_settings_or_defaults,
)
from mattectl.config import Settings
from mattectl.errors import ExitCode, MattectlError
from mattectl.modelstore.download import Progress as ProgressFn
from mattectl.modelstore.manifest import Published
from mattectl.modelstore.service import ModelStore, VerifyResult
from mattectl.overview import daemon_state
from mattectl.report import ModelReport
from mattectl.store.repository import JobRepository

app = typer.Typer(help="List, download, check and import model weights.", no_args_is_help=True)

CHECKSUM_NOTE = {
    Published.MATCH: "matches the published checksum",
    Published.NONE: "nothing published; its checksum is recorded for `mattectl models verify`",
    Published.DIFFERS: "differs from the published checksum, taken because of --custom",
}
RELOAD_NOTE = ("A running daemon keeps the weights it has loaded until it loads the model again "
               "(restart it, or let models.idle_unload_s unload the model).")
ModelName = Annotated[str, typer.Argument(help=f"One of: {', '.join(MODELS)}.")]


def _known(name: str) -> str:
    if name not in MODELS:
        raise typer.BadParameter(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    return name


def _running_models(settings: Settings) -> dict[str, ModelReport]:
    """What the running daemon reports about its models (nothing when it is not running)."""
    if not settings.database_path.exists():
        return {}
    repo = JobRepository.open(settings.database_path, writer=False)
    try:
        daemons = repo.daemons()
    finally:
        repo.close()
    if not daemons or daemon_state(daemons[0], settings.daemon.heartbeat_s)[0] != "running":
        return {}
    return daemons[0].report.models


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


@app.command("list")
def list_models(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every known model: backend, where its files are, size, checksum state, loaded or not."""
    settings = load_settings_or_defaults(config)
    live = _running_models(settings)
    rows = []
    for state in ModelStore(settings).states():
        running = live.get(state.name, ModelReport())
        rows.append({**asdict(state), "loaded": bool(running.loaded), "device": running.device})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("model", "backend", "files", "size", "checksum", "published", "loaded",
                  "device")
    for r in rows:
        table.add_row(r["name"], r["backend"], r["location"] or "not installed", _size(r["size"]),
                      r["checksum"], r["published_checksum"], "yes" if r["loaded"] else "no",
                      r["device"] or "-")
    console.print(table)
    if not live:
        console.print("(the daemon is not running: nothing is loaded)")


@contextmanager
def _progress(name: str) -> Iterator[ProgressFn]:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(name, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@app.command("pull")
def pull(
    names: Annotated[list[str], typer.Argument(help=f"Models: {', '.join(MODELS)}.")],
    url: Annotated[str | None, typer.Option(
        help="Download from this address instead (a mirror); one model only.")] = None,
    offline: Annotated[bool, typer.Option(
        help="Take BSHM from a ModelScope cache already on this machine; no network.")] = False,
    custom: Annotated[bool, typer.Option(
        help="Accept weights that differ from the published checksum.")] = False,
    config: ConfigOption = None,
) -> None:
    """Download models (resuming a broken download), check them and install them."""
    names = [_known(n) for n in names]
    if url and len(names) != 1:
        raise typer.BadParameter("--url takes one model")
    store = ModelStore(load_settings_or_defaults(config))
    failed = 0
    for name in names:
        try:
            with _progress(name) as progress:
                record = store.pull(name, progress, url=url, offline=offline, custom=custom)
        except MattectlError as exc:
            err_console.print(f"[red]failed[/] {name}: {exc}", highlight=False)
            failed += 1
            continue
        console.print(f"{name}: installed at {record.location} from {record.source} "
                      f"({CHECKSUM_NOTE[record.published]})", highlight=False)
    if failed < len(names):
        console.print(RELOAD_NOTE)
    if failed:
        raise typer.Exit(ExitCode.FAILURE)


@app.command("import")
def import_model(
    name: ModelName,
    path: Annotated[Path, typer.Argument(
        help="The weight file (U²-Net) or the model folder (BSHM) copied in by hand.")],
    custom: Annotated[bool, typer.Option(
        help="Accept weights that differ from the published checksum.")] = False,
    config: ConfigOption = None,
) -> None:
    """Install weights copied in by hand (no internet): checked, then copied into place."""
    record = ModelStore(load_settings_or_defaults(config)).import_(_known(name), path,
                                                                  custom=custom)
    console.print(f"{name}: installed at {record.location} "
                  f"({CHECKSUM_NOTE[record.published]})", highlight=False)
    console.print(RELOAD_NOTE)


def _render_verify(results: list[VerifyResult]) -> None:
    if not results:
        console.print("no model is installed and no folder needs one")
    for r in results:
        mark = "[green]ok[/]" if r.ok else "[red]FAILED[/]"
        console.print(f"{mark} {r.name} ({r.location or 'not installed'})", highlight=False)
        for finding in r.findings:
            console.print(f"    {finding}", highlight=False)


@app.command("verify")
def verify(
    names: Annotated[list[str] | None, typer.Argument(
        help="Models to check [default: every installed model, and the configured folders']")]
    = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check files, sizes, checksums, and that each model loads and runs. Exit 1 on a problem."""
    settings = load_settings_or_defaults(config)
    store = ModelStore(settings)
    wanted = [_known(n) for n in names] if names else [
        n for n in MODELS if store.location(n) is not None or
        any(w.model == n for w in settings.watch)]
    results = [store.verify(name) for name in wanted]
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        _render_verify(results)
    if not all(r.ok for r in results):
        raise typer.Exit(ExitCode.FAILURE)
