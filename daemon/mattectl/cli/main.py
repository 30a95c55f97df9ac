"""Entry point: builds the Typer app and maps mattectl's errors to exit codes."""

from __future__ import annotations

import sys

import typer

from mattectl import __version__
from mattectl.cli import bench, config_cmd, evaluate, jobs, process, rules, run, status
from mattectl.cli.common import err_console
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
app.add_typer(jobs.app, name="jobs")
app.add_typer(config_cmd.app, name="config")
app.add_typer(rules.app, name="rules")


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
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except MattectlError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(int(exc.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
