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
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import MODELS, Source
from mattectl.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    job_log_if_any,
    load_settings_or_defaults,
)
from mattectl.cli.output import Column, Fit, PathCell, print_error, print_message, print_table
from mattectl.config import Settings
from mattectl.errors import ExitCode, MattectlError, ModelUnavailableError
from mattectl.modelstore.download import TIMEOUT_S
from mattectl.modelstore.manifest import Published
from mattectl.modelstore.service import ModelStore, VerifyResult
from mattectl.overview import daemon_state
from mattectl.report import ModelReport

app = typer.Typer(help="List, download, check and import model weights.", no_args_is_help=True)

CHECKSUM_NOTE = {
    Published.MATCH: "matches the published checksum",
    Published.NONE: "nothing published; its checksum is recorded for `mattectl models verify`",
    Published.DIFFERS: "differs from the published checksum, taken because of --custom",
}
RELOAD_NOTE = ("A running daemon keeps the weights it has loaded until it loads the model again "
               "(restart it, or let models.idle_unload_s unload the model).")


def _complete_model(incomplete: str) -> list[str]:
    return [name for name in MODELS if name.startswith(incomplete)]


ModelName = Annotated[str, typer.Argument(help=f"One of: {', '.join(MODELS)}.",
                                          autocompletion=_complete_model)]
# At 80 columns: the model, where its weights come from and their state whole, the file's path
# shortened from the left; the precision, backend, published checksum, size, device, then
# loaded left out.
MODEL_COLUMNS = (
    Column("model"), Column("backend", drop=5), Column("from"),
    Column("files", Fit.PATH, min_width=34), Column("size", drop=3), Column("checksum"),
    Column("published", drop=4), Column("loaded", drop=1), Column("device", drop=2),
    Column("precision", drop=6),
)


def _known(name: str) -> str:
    if name not in MODELS:
        raise typer.BadParameter(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    return name


def _running_models(settings: Settings) -> dict[str, ModelReport]:
    """What the running daemon reports about its models (nothing when it is not running)."""
    repo = job_log_if_any(settings)
    if repo is None:
        return {}
    try:  # this workstation's daemon (a shared job log has the others' too)
        daemons = [d for d in repo.daemons() if d.host == settings.host_name]
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
        rows.append({**asdict(state), "loaded": bool(running.loaded), "device": running.device,
                     "precision": running.precision})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print_table(console, MODEL_COLUMNS, [
        [r["name"], r["backend"], r["origin"] or "-",
         PathCell(r["location"]) if r["location"] else "not installed", _size(r["size"]),
         r["checksum"], r["published_checksum"], "yes" if r["loaded"] else "no",
         r["device"] or "-", r["precision"] or "-"] for r in rows])
    if not live:
        console.print("(the daemon is not running: nothing is loaded)")


class _Bars:
    """A progress bar (size, speed, time left) per source tried, each under a line naming it."""

    def __init__(self, progress: Progress, name: str) -> None:
        self.progress = progress
        self.name = name
        self.task: TaskID | None = None
        self.tried = 0

    def source(self, source: Source) -> None:
        self.tried += 1
        more = f" (and {len(source.urls) - 1} more parts)" if len(source.urls) > 1 else ""
        print_message(self.progress.console, f"{self.name}: trying {source.label}\n"
                                             f"    {source.urls[0]}{more}")
        self.task = self.progress.add_task(f"{self.name}, source {self.tried}", total=None)

    def __call__(self, done: int, total: int | None) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.name, total=None)
        self.progress.update(self.task, completed=done, total=total)


@contextmanager
def _progress(name: str) -> Iterator[_Bars]:
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=24), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        yield _Bars(progress, name)


@app.command("pull")
def pull(
    names: Annotated[list[str], typer.Argument(help=f"Models: {', '.join(MODELS)}.",
                                               autocompletion=_complete_model)],
    url: Annotated[str | None, typer.Option(
        help="Download from this address instead (a mirror); one model only.")] = None,
    offline: Annotated[bool, typer.Option(
        help="Take BSHM from a ModelScope cache already on this machine; no network.")] = False,
    custom: Annotated[bool, typer.Option(
        help="Accept weights that differ from the published checksum.")] = False,
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Give a source up after this many seconds without an answer or data.")]
    = TIMEOUT_S,
    config: ConfigOption = None,
) -> None:
    """Download models, trying each source in turn (release assets and mirrors, then Google
    Drive), resuming a broken download, check them and install them."""
    names = [_known(n) for n in names]
    if url and len(names) != 1:
        raise typer.BadParameter("--url takes one model")
    store = ModelStore(load_settings_or_defaults(config))
    failed = 0
    for name in names:
        try:
            with _progress(name) as bars:
                record = store.pull(name, bars, url=url, offline=offline, custom=custom,
                                    on_source=bars.source, timeout=timeout)
        except MattectlError as exc:
            print_error(err_console, f"{name}: {exc}", prefix="failed")
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


@app.command("export-onnx")
def export_onnx(
    out: Annotated[Path, typer.Argument(help="The ONNX file to write (replaced if it exists).")],
    name: Annotated[str, typer.Option(
        "--model", "-m", help="A U²-Net model.", autocompletion=_complete_model)] = "u2netp",
    config: ConfigOption = None,
) -> None:
    """Export a U²-Net model's weights, the ones the daemon would load, to ONNX (float32, input
    1x3x320x320 normalised, outputs d0..d6): for onnxruntime or rembg's `u2net_custom` model.
    Needs the `onnx` package (the `bench` extra)."""
    spec = MODELS[_known(name)]
    if spec.backend != "u2net":
        raise typer.BadParameter(f"'{name}' is a {spec.backend} model: only U²-Net models export")
    settings = load_settings_or_defaults(config)
    found = ModelCache(settings.models, settings.models_dir).availability(name)
    if not found.ok or found.weights is None:
        raise ModelUnavailableError(found.reason)
    # torch is imported here, not when the CLI starts.
    from mattectl.backends.u2net_onnx import export_onnx as export

    exported = export(spec.variant, found.weights, out)
    console.print(f"{name}: {found.weights} ({found.source}) exported to {exported.path} "
                  f"({_size(exported.size)}, ONNX opset {exported.opset})", highlight=False)
