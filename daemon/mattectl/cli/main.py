"""Entry point: builds the Typer app and maps mattectl's errors to exit codes."""

from __future__ import annotations

import sys

import typer

from mattectl import __version__
from mattectl.cli import (
    bench,
    config_cmd,
    db,
    evaluate,
    jobs,
    models,
    process,
    rules,
    run,
    status,
    web,
)
from mattectl.cli.common import err_console
from mattectl.cli.output import print_error
from mattectl.errors import MattectlError

app = typer.Typer(
    name="mattectl",
    help="Portrait-matting hotfolder daemon: drop photos in, get cutouts out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("run")(run.run)
app.command("status")(status.status)
app.command("process")(process.process)
app.command("eval")(evaluate.eval_command)
app.command("bench")(bench.bench)
app.command("web")(web.web)
app.add_typer(jobs.app, name="jobs")
app.add_typer(config_cmd.app, name="config")
app.add_typer(models.app, name="models")
app.add_typer(rules.app, name="rules")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        print(f"mattectl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Portrait-matting hotfolder daemon: drop photos in, get cutouts out."""


def main() -> None:
    """Run the CLI. Typer (in standalone mode) reports usage errors and exits with their codes;
    mattectl's own errors are printed without a traceback (wrapped at spaces on a terminal, one
    line per line of the message elsewhere) and mapped to their exit codes."""
    try:
        # The name shell completion is installed under, also when started as `python -m`.
        app(prog_name="mattectl")
    except MattectlError as exc:
        print_error(err_console, str(exc))
        sys.exit(int(exc.exit_code))
