"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mattectl import config
from mattectl.config import Settings
from mattectl.store.repository import JobRepository

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar=config.ENV_CONFIG, show_envvar=True,
                 help=f"Config file [default: {config.DEFAULT_CONFIG}]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def load_settings(path: Path | None) -> Settings:
    return config.load(path)


def load_settings_or_defaults(path: Path | None) -> Settings:
    """The config when one is given or exists; built-in defaults otherwise (one-shot commands)."""
    if path is None and not config.default_path().exists():
        return config.parse({})
    return config.load(path)


def open_repository(settings: Settings, *, writer: bool = False) -> JobRepository:
    """The daemon's job log. Readers never create it: a missing database means no daemon ran."""
    from mattectl.errors import DaemonNotRunningError

    if not writer and not settings.database_path.exists():
        raise DaemonNotRunningError(
            f"no job database at {settings.database_path}: the daemon has never run with this "
            "config")
    return JobRepository.open(settings.database_path, writer=writer)
