"""`mattectl config`: check a configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mattectl.cli.common import ConfigOption, console, load_daemon_settings

app = typer.Typer(help="Check the configuration.", no_args_is_help=True)


@app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(help="Config file to check.")] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a config file; problems are listed by key path. Exit 2 when invalid."""
    settings = load_daemon_settings(path or config)
    console.print(f"[green]ok[/]: {settings.source}", highlight=False)
    console.print(f"  job log: {settings.job_log_shown}", highlight=False, markup=False)
    for watch in settings.watch:
        console.print(f"  {watch.name}: {watch.input} -> {watch.output} ({watch.model_choice}"
                      f"{', polling' if watch.polling else ''})", highlight=False)
