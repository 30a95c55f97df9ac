"""A config is used only once its model names and rule presets are checked: `mattectl config
check`, the CLI's other commands and the daemon's reload all load it through mattectl.checks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattectl import checks, config
from mattectl.app import Daemon
from mattectl.cli.main import app
from mattectl.errors import ConfigError

PRESET = '[[rules]]\nname = "only"\nmodel = "{model}"\n'


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.toml").write_text(PRESET.format(model="u2netp"))
    path = tmp_path / "mattectl.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n'
                    '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\nrules = "mine"\n')
    return path


def break_preset(config_file: Path) -> None:
    (config_file.parent / "rules" / "mine.toml").write_text(PRESET.format(model="u3net"))


def test_a_preset_naming_an_unknown_model_makes_the_config_invalid(config_file: Path) -> None:
    assert checks.load(config_file).watch[0].rules == "mine"
    break_preset(config_file)
    assert config.load(config_file).watch[0].rules == "mine"  # the schema alone: no presets
    with pytest.raises(ConfigError) as info:
        checks.load(config_file)
    (key, message), = info.value.problems
    assert key == "watch[0].rules"
    assert message.startswith("preset 'mine' is unusable (rules[0].model: unknown model 'u3net'")


def test_config_check_reports_the_preset(config_file: Path) -> None:
    break_preset(config_file)
    result = CliRunner().invoke(app, ["config", "check", str(config_file)])
    assert isinstance(result.exception, ConfigError)
    assert "watch[0].rules" in str(result.exception)
    assert "unknown model 'u3net'" in str(result.exception)


def test_a_reload_refuses_an_invalid_preset_and_keeps_the_running_config(
        config_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    daemon = Daemon(checks.load(config_file))
    running = daemon.settings
    break_preset(config_file)
    with caplog.at_level(logging.ERROR, logger="mattectl.app"):
        daemon.reload()
    assert daemon.settings is running
    assert "reload refused" in caplog.text
    assert "unknown model 'u3net'" in caplog.text
