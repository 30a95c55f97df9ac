"""Least privilege: no root by default, private state, outputs inside their root."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from mattectl import app
from mattectl.app import Daemon, check_user
from mattectl.config import Settings
from mattectl.errors import ConfigError, InputError, MattectlError
from mattectl.matting.naming import output_path

from .daemon_process import write_config
from .support import AS_ROOT, REPO_ROOT


def test_root_is_refused_unless_allowed(make_settings: Callable[..., Settings],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.os, "geteuid", lambda: 0)
    with pytest.raises(MattectlError, match="refusing to run as root"):
        check_user(make_settings(daemon={"allow_root": False}))
    check_user(make_settings(daemon={"allow_root": True}))


@pytest.mark.slow  # starts `mattectl run` in a subprocess
@pytest.mark.skipif(not AS_ROOT, reason="only a root test run can start the daemon as root")
def test_mattectl_run_as_root_exits_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("allow_root = true", ""))
    result = subprocess.run([sys.executable, "-m", "mattectl", "run", "-c", str(config)],
                            capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(REPO_ROOT / "daemon"), "PATH": "/usr/bin"})
    assert result.returncode == 1 and "refusing to run as root" in result.stderr


def test_state_is_private(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    daemon = Daemon(settings)
    daemon.start()
    try:
        state = settings.daemon.state_dir
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "mattectl.pid"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    finally:
        daemon.stop()


@pytest.mark.parametrize("template", ["../{stem}.png", "/tmp/{stem}.png", "a/../../{stem}.png"])
def test_templates_that_escape_the_output_are_rejected(make_settings: Callable[..., Settings],
                                                       template: str) -> None:
    with pytest.raises(ConfigError, match="must stay inside the output folder"):
        make_settings(watch={"output_template": template})


def test_file_names_cannot_escape_the_output(make_settings: Callable[..., Settings]) -> None:
    watch = make_settings().watch[0]
    assert output_path(watch, "sub/a.jpg", "u2netp", date.today()) \
        == watch.output / "sub" / "a.png"
    with pytest.raises(InputError, match="would land outside"):
        output_path(watch, "../../etc/a.jpg", "u2netp", date.today())
