"""Least privilege: no root by default, private state, outputs inside their root."""

from __future__ import annotations

import os
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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_existing_state_dir_is_used_as_it_is_never_chmodded(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    public.chmod(0o1777)  # like /tmp
    with pytest.raises(ConfigError, match=r"public may be written by anyone \(mode 1777\)"):
        app.prepare_state_dir(public)
    assert mode(public) == 0o1777
    readable = tmp_path / "readable"
    readable.mkdir()
    readable.chmod(0o750)  # the admin's choice: others may read, none may write
    app.prepare_state_dir(readable)
    assert mode(readable) == 0o750


def test_a_missing_state_dir_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    umask = os.umask(0o277)
    try:
        app.prepare_state_dir(tmp_path / "var" / "state")
    finally:
        os.umask(umask)
    assert mode(tmp_path / "var" / "state") == 0o700


def test_a_state_dir_that_is_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="link is a symbolic link"):
        app.prepare_state_dir(tmp_path / "link")


def test_the_daemon_refuses_a_state_dir_of_another_user(make_settings: Callable[..., Settings],
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    state = settings.daemon.state_dir
    state.mkdir(mode=0o755)
    owner = state.stat().st_uid
    monkeypatch.setattr(app.os, "geteuid", lambda: owner + 1)  # the daemon runs as another user
    with pytest.raises(ConfigError) as caught:
        Daemon(settings).start()
    (key, message), = caught.value.problems
    assert key == "daemon.state_dir" and f"{state} belongs to " in message
    assert mode(state) == 0o755 and list(state.iterdir()) == []
