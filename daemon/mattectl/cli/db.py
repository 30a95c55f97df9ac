"""`mattectl db`: check, back up, reset and restore the job database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mattectl.cli.common import ConfigOption, JsonOption, console, err_console, load_settings
from mattectl.config import Settings
from mattectl.errors import ExitCode
from mattectl.store import backup as backups
from mattectl.store import database
from mattectl.store.database import DatabaseCheck
from mattectl.store.engine import SCHEMA_VERSION
from mattectl.store.repository import JobRepository

app = typer.Typer(help="Check, back up, reset and restore the job database.",
                  no_args_is_help=True)


def _sqlite_only(settings: Settings, what: str) -> Path:
    """The SQLite file; a job log on PostgreSQL is the server's to back up and restore."""
    target = settings.job_log
    if not isinstance(target, Path):
        err_console.print(f"the job log is in PostgreSQL ({settings.job_log_shown}): {what} is "
                          "the database server's business (pg_dump, pg_restore)",
                          highlight=False, markup=False)
        raise typer.Exit(ExitCode.USAGE)
    return target


def _check_server(settings: Settings, as_json: bool) -> None:
    """`db check` on PostgreSQL: reachable, and at this mattectl's schema version."""
    from mattectl.errors import MattectlError

    problems = []
    try:
        JobRepository.open(settings.job_log, writer=False).close()
    except MattectlError as exc:
        problems.append(str(exc))
    if as_json:
        print(json.dumps({"url": settings.job_log_shown, "ok": not problems,
                          "expected_version": SCHEMA_VERSION, "problems": problems}, indent=2))
    else:
        _say(f"database: {settings.job_log_shown}")
        _say(f"schema:   this mattectl: {SCHEMA_VERSION}")
        _say("state:    ok" if not problems else "state:    PROBLEM")
        for problem in problems:
            _say(f"  ! {problem}")
    if problems:
        raise typer.Exit(ExitCode.FAILURE)


def _lock(settings: Settings) -> Path:
    return settings.daemon.state_dir / "mattectl.pid"  # the daemon's InstanceLock


@contextmanager
def _file_errors() -> Iterator[None]:
    """A file the command cannot read or write (no permission, disk full): said, exit 1."""
    try:
        yield
    except OSError as exc:
        err_console.print(f"error: {exc.filename or ''}: {exc.strerror or exc}",
                          highlight=False, markup=False)
        raise typer.Exit(ExitCode.FAILURE) from None


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _render(found: DatabaseCheck) -> None:
    _say(f"database: {found.path}")
    if not found.exists and found.ok:
        _say("state:    none yet (the daemon creates it when it first starts)")
    else:
        size = "-" if found.size is None else f"{found.size:,} bytes"
        version = "-" if found.schema_version is None else str(found.schema_version)
        _say(f"size:     {size}")
        _say(f"schema:   {version} (this mattectl: {found.expected_version})")
        _say("state:    ok" if found.ok else "state:    DAMAGED")
    for problem in found.problems:
        _say(f"  ! {problem}")
    newest = found.backups[-1] if found.backups else None
    _say(f"backups:  {len(found.backups)}" + (f", newest {newest}" if newest else ""))
    if not found.ok:
        _say("To go on: stop the daemon; restore a backup (mattectl db restore FILE) or start "
             "afresh (mattectl db reset --keep-backup: the file is moved aside, never "
             "deleted).")


@app.command("check")
def check(
    quick: Annotated[bool, typer.Option(
        "--quick", help="PRAGMA quick_check instead of the full integrity_check.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the job database: the file, SQLite's integrity check, the schema version.

    Exit 0 when it is sound (or none was created yet), 1 when it is damaged."""
    settings = load_settings(config)
    if not isinstance(settings.job_log, Path):
        _check_server(settings, as_json)
        return
    found = database.check(settings.job_log, full=not quick)
    if as_json:
        print(json.dumps({"path": str(found.path), "exists": found.exists, "ok": found.ok,
                          "size": found.size, "schema_version": found.schema_version,
                          "expected_version": found.expected_version,
                          "problems": found.problems,
                          "backups": [str(b) for b in found.backups]}, indent=2))
    else:
        _render(found)
    if not found.ok:
        raise typer.Exit(ExitCode.FAILURE)


@app.command("upgrade")
def upgrade(config: ConfigOption = None) -> None:
    """Bring the job log's schema to this mattectl's version (Alembic migrations), on the SQLite
    file or the studio's PostgreSQL database; a new database is created. Stop every daemon that
    uses it first. Exit 5 when the schema is newer than this mattectl knows."""
    settings = load_settings(config)
    target = settings.job_log
    with _file_errors():
        if isinstance(target, Path):
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        repo = JobRepository.open(target, lease_s=settings.database.lease_s)
    repo.close()
    _say(f"job log {settings.job_log_shown}: schema version {SCHEMA_VERSION} (up to date)")


@app.command("backup")
def backup(config: ConfigOption = None) -> None:
    """Take a backup now (online: the daemon may run), beside the periodic ones."""
    settings = load_settings(config)
    db = _sqlite_only(settings, "a backup")
    if not database.check_file(db):
        err_console.print(f"no job database at {db} yet: nothing to back up", highlight=False,
                          markup=False)
        raise typer.Exit(ExitCode.NOT_FOUND)
    with _file_errors():
        taken = backups.backup(db, keep=settings.daemon.backup_keep)
    _say(f"backed up to {taken}")


@app.command("reset")
def reset(
    keep_backup: Annotated[bool, typer.Option(
        "--keep-backup", help="Required: the old file is moved aside with a time stamp, never "
                              "deleted.")] = False,
    config: ConfigOption = None,
) -> None:
    """Start afresh: move the job database aside and create an empty one (daemon stopped).

    Photos already delivered are still recognised from each output folder's manifest and are
    not cut out again; queued and failed jobs are forgotten (their photos are queued again)."""
    if not keep_backup:
        err_console.print("mattectl db reset moves the job database aside (it never deletes "
                          "it): say --keep-backup to go ahead", highlight=False, markup=False)
        raise typer.Exit(ExitCode.USAGE)
    settings = load_settings(config)
    db = _sqlite_only(settings, "starting afresh")
    if not db.parent.is_dir():
        err_console.print(f"no state directory {db.parent}: nothing to reset (the daemon "
                          "creates the job database when it first starts)", highlight=False,
                          markup=False)
        raise typer.Exit(ExitCode.NOT_FOUND)
    with _file_errors(), database.daemon_stopped(_lock(settings)):
        moved = database.reset(db)
    for path in moved:
        _say(f"moved aside: {path}")
    _say(f"new, empty job database: {db}")


@app.command("restore")
def restore(
    backup_file: Annotated[Path, typer.Argument(
        metavar="BACKUP", help="A backup (mattectl db check lists them).")],
    config: ConfigOption = None,
) -> None:
    """Put a backup in place of the job database (daemon stopped; the current file is moved
    aside, never deleted). Jobs recorded after the backup was taken are not in it; photos
    delivered since are still recognised from each output folder's manifest."""
    settings = load_settings(config)
    db = _sqlite_only(settings, "restoring")
    with _file_errors():
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new machine's state
        with database.daemon_stopped(_lock(settings)):
            moved = backups.restore(db, backup_file.absolute())
    for path in moved:
        _say(f"moved aside: {path}")
    _say(f"restored {backup_file} to {db}")
