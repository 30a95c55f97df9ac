"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mattectl import checks, config
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
    """The config, its model names and rule presets checked too (mattectl.checks)."""
    return checks.load(path)


def load_daemon_settings(path: Path | None) -> Settings:
    """For `mattectl run` and `config check`: :func:`load_settings`, and a folder to watch."""
    return checks.load(path, checks=checks.DAEMON_CHECKS)


def load_settings_or_defaults(path: Path | None) -> Settings:
    """For one-shot commands (process, eval, bench, models, rules): the config when one is
    given or exists, built-in defaults otherwise. They never read the drop folders, so a config
    whose folders exist only on the studio's workstation is accepted."""
    if path is None and not config.default_path().exists():
        return checks.parse({})
    return checks.load(path, checks=checks.TOOL_CHECKS)


def open_repository(settings: Settings, *, writer: bool = False) -> JobRepository:
    """The daemon's job log. Readers never create it: a missing database means no daemon ran."""
    from mattectl.errors import DaemonNotRunningError
    from mattectl.store.database import check_file

    target = settings.job_log  # the SQLite file, or a server database's URL
    # (check_file raises a clear JobLogDamagedError for a lost, emptied or garbled database)
    if not writer and isinstance(target, Path) and not check_file(target):
        raise DaemonNotRunningError(
            f"no job database at {target}: the daemon has never run with this config")
    return JobRepository.open(target, writer=writer, lease_s=settings.database.lease_s)


def job_log_if_any(settings: Settings) -> JobRepository | None:
    """The daemon's job log to read from, or None where there is none yet (no SQLite file) or
    the server cannot be reached: for commands that only learn from it (latencies, the running
    daemon's models)."""
    from mattectl.errors import JobLogUnavailableError, SchemaTooNewError, SchemaTooOldError

    target = settings.job_log
    if isinstance(target, Path) and not target.exists():
        return None
    try:
        return JobRepository.open(target, writer=False)
    except (SchemaTooNewError, SchemaTooOldError):
        return None  # (the daemon and `mattectl status` say what to do about it)
    except JobLogUnavailableError:
        if isinstance(target, Path):
            raise  # a damaged file says so (JobLogDamagedError), as before
        return None
