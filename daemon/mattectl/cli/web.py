"""`mattectl web`: the studio page's address, and the token that lets a browser act on it."""

from __future__ import annotations

import socket
import webbrowser
from typing import Annotated

import typer

from mattectl.cli.common import ConfigOption, console, err_console, load_settings
from mattectl.config import Settings
from mattectl.errors import ExitCode, MattectlError
from mattectl.web import auth


def page_url(settings: Settings) -> str:
    """The address a person types: this computer's name when the page listens everywhere."""
    host, port = settings.web.address
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def web(
    token: Annotated[bool, typer.Option(
        "--token", help="Show the token, and a one-time sign-in link (15 minutes).")] = False,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the studio page's address (served by `mattectl run` with [web] enabled = true).

    Run it as the daemon's user: the token lives in its state directory.
    """
    settings = load_settings(config)
    url = page_url(settings)
    if not settings.web.enabled:
        err_console.print(f"the studio page is off: set [web] enabled = true in "
                          f"{settings.source} and restart the daemon (it would be at {url})",
                          highlight=False)
        raise typer.Exit(ExitCode.FAILURE)
    console.print(url, highlight=False, soft_wrap=True)
    if token:
        _show_token(settings, url)
    if open_:
        webbrowser.open(url)


def _show_token(settings: Settings, url: str) -> None:
    if not settings.web.token:
        raise MattectlError("web.token = false: the page is read-only and has no token")
    try:
        value = auth.load_token(settings.web_dir)
        code = auth.make_link_code(settings.web_dir)
    except OSError as exc:
        raise MattectlError(f"cannot read or make the token in {settings.web_dir}: "
                            f"{exc.strerror} (run this as the daemon's user)") from None
    console.print(f"token: {value}", highlight=False, soft_wrap=True)
    console.print(f"one-time sign-in link (15 minutes): {url}login/{code}", highlight=False,
                  soft_wrap=True)
