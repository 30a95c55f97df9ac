"""`mattectl web`: the page's address, the token and a one-time link."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from mattectl.cli.main import app
from mattectl.errors import MattectlError
from mattectl.web import auth

from .support import ALLOW_ROOT_TOML

CONFIG = """
[daemon]
state_dir = "state"
{allow_root}
[[watch]]
name = "studio"
input = "in"
output = "out"
[web]
{web}
"""


def config(tmp_path: Path, web: str) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "mattectl.toml"
    path.write_text(CONFIG.format(allow_root=ALLOW_ROOT_TOML, web=web))
    return path


def test_web_prints_the_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["web", "-c", str(config(tmp_path, "enabled = true"))])
    assert result.exit_code == 0 and result.stdout.strip() == "http://127.0.0.1:8750/"
    path = config(tmp_path, 'enabled = true\nlisten = "0.0.0.0:9000"')
    result = CliRunner().invoke(app, ["web", "-c", str(path)])
    assert result.stdout.strip() == f"http://{socket.gethostname()}:9000/"
    assert not (tmp_path / "state" / "web" / "token").exists()  # no token asked for


def test_web_token_shows_the_token_and_a_link_that_works_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["web", "--token", "-c",
                                      str(config(tmp_path, "enabled = true"))])
    assert result.exit_code == 0, result.output
    web_dir = tmp_path / "state" / "web"
    token = auth.load_token(web_dir, create=False)
    assert f"token: {token}" in result.stdout
    assert (web_dir / "token").stat().st_mode & 0o777 == 0o600
    code = result.stdout.split("http://127.0.0.1:8750/login/")[1].split()[0]
    assert auth.use_link_code(web_dir, code) and not auth.use_link_code(web_dir, code)


def test_web_says_when_the_page_is_off(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["web", "-c", str(config(tmp_path, ""))])
    assert result.exit_code == 1 and "enabled = true" in result.stderr
    result = CliRunner().invoke(app, ["web", "--token", "-c",
                                      str(config(tmp_path, "enabled = true\ntoken = false"))])
    assert isinstance(result.exception, MattectlError) and "read-only" in str(result.exception)
