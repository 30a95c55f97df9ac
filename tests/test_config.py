from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattectl import checks, config
from mattectl.cli.main import app
from mattectl.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mattectl.toml"
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(exc.value.problems)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


def test_example_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    settings = checks.parse(tomllib.loads(EXAMPLE.read_text()), base_dir=tmp_path)
    assert settings.watch[0].input == tmp_path / "in"
    text = EXAMPLE.read_text()
    for section in (config.DaemonConfig, config.ModelsConfig, config.WatchConfig):
        for key in section.model_fields:
            assert f"{key} =" in text or f"# {key} =" in text or f"[models.{key}]" in text, key


def test_relative_paths_resolve_against_the_config_file(folders: Path) -> None:
    path = write(folders, '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\n')
    settings = config.load(path)
    assert settings.watch[0].input == folders / "in"
    assert settings.watch[0].output == folders / "out"
    assert settings.source == path


def test_unknown_key_names_its_path(folders: Path) -> None:
    path = write(folders, '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\nrecursiv = true\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc) == {"watch[0].recursiv": "unknown key"}


def test_bad_type_and_missing_key(folders: Path) -> None:
    path = write(folders, '[daemon]\nworkers = "two"\n[[watch]]\nname = "a"\ninput = "in"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    found = problems(exc)
    assert "daemon.workers" in found and "integer" in found["daemon.workers"]
    assert found["watch[0].output"] == "required key is missing"


def test_missing_input_folder(tmp_path: Path) -> None:
    path = write(tmp_path, '[[watch]]\nname = "a"\ninput = "nope"\noutput = "out"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc)["watch[0].input"].startswith("folder does not exist")


@pytest.mark.parametrize(("input_", "output"), [("in", "in/cutouts"), ("in/sub", "in")])
def test_nested_input_and_output_are_rejected(folders: Path, input_: str, output: str) -> None:
    (folders / "in" / "sub").mkdir()
    path = write(folders, f'[[watch]]\nname = "a"\ninput = "{input_}"\noutput = "{output}"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert "must not be nested" in problems(exc)["watch[0].output"]


def test_move_needs_a_folder_and_names_are_unique(folders: Path) -> None:
    (folders / "in2").mkdir()
    path = write(folders, """
[[watch]]
name = "a"
input = "in"
output = "out"
on_success = "move"
[[watch]]
name = "a"
input = "in2"
output = "out2"
""")
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    found = problems(exc)
    assert found["watch[0].processed_dir"] == "required when the original is moved"
    assert "already used" in found["watch[1].name"]


def test_template_and_model_are_checked(folders: Path) -> None:
    path = write(folders, '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\n'
                          'output_template = "{nope}.png"\nmodel = "u3net"\n')
    with pytest.raises(ConfigError) as exc:
        checks.load(path)  # the model catalog is mattectl.checks' to pass
    found = problems(exc)
    assert "bad template" in found["watch[0].output_template"]
    assert "unknown model 'u3net'" in found["watch[0].model"]


def test_model_names_are_checked_against_the_names_given(folders: Path) -> None:
    path = write(folders, '[models]\npreload = ["u3net"]\npaths = { mine = "w.pth" }\n'
                          '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\nmodel = "mine"\n')
    assert config.load(path).watch[0].model == "mine"  # config alone knows no catalog
    with pytest.raises(ConfigError) as exc:
        config.load(path, models=("u2netp", "mine"))
    assert problems(exc) == {"models.preload": "unknown model 'u3net' (known: mine, u2netp)"}


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[[watch]\n"))


def test_environment_overrides_models_dir(folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_MODELS_DIR, str(folders / "weights"))
    settings = config.load(write(folders, '[models]\ndir = "elsewhere"\n'))
    assert settings.models_dir == folders / "weights"


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("true", True), ("0", False),
                                              ("", False)])
def test_environment_allows_root(folders: Path, monkeypatch: pytest.MonkeyPatch, value: str,
                                 allowed: bool) -> None:
    monkeypatch.setenv(config.ENV_ALLOW_ROOT, value)
    assert config.load(write(folders, "")).daemon.allow_root is allowed


def test_config_check_command(folders: Path) -> None:
    runner = CliRunner()
    good = write(folders, '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\n')
    result = runner.invoke(app, ["config", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "a: " in result.output
    bad = folders / "bad.toml"
    bad.write_text('[[watch]]\nname = "a"\ninput = "missing"\noutput = "out"\n')
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert isinstance(result.exception, ConfigError)
    assert "watch[0].input" in str(result.exception)


def test_gpu_and_isolation_settings_are_checked(folders: Path) -> None:
    path = write(folders, '[models]\ndevice = "cpu"\nrequire_gpu = true\npredict_timeout_s = 500\n'
                          '[models.bshm]\nmax_side = 10\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    found = problems(exc)
    assert found["models.bshm.max_side"].startswith("Input should be greater than or equal to")
    path = write(folders, '[models]\ndevice = "cpu"\nrequire_gpu = true\npredict_timeout_s = 500\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc) == {
        "models.require_gpu": "cannot be true while models.device = 'cpu'",
        "models.predict_timeout_s": "load_timeout_s + predict_timeout_s (240 + 500 s) must stay "
                                    "under daemon.job_timeout_s (600 s)"}
    path = write(folders, '[models]\nisolation = "inline"\npredict_timeout_s = 500\n')
    assert config.load(path).models.predict_timeout_s == 500  # no child to time out
