from __future__ import annotations

import subprocess
import sys
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
    for section in (config.DaemonConfig, config.ModelsConfig, config.WatchConfig,
                    config.WebConfig, config.DatabaseConfig):
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
    path = write(folders, '[daemon]\nmax_attempts = "two"\n[[watch]]\nname = "a"\n'
                          'input = "in"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    found = problems(exc)
    assert "daemon.max_attempts" in found and "integer" in found["daemon.max_attempts"]
    assert found["watch[0].output"] == "required key is missing"


@pytest.mark.parametrize("value", ['"two"', "0", "17", "true", "2.5"])
def test_workers_is_auto_or_a_count_in_range(folders: Path, value: str) -> None:
    path = write(folders, f'[daemon]\nworkers = {value}\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc) == {"daemon.workers": "must be 'auto' or a whole number from 1 to 16"}


def test_workers_auto_is_a_worker_per_core_plus_one(folders: Path) -> None:
    settings = config.load(write(folders, ""))
    assert settings.daemon.workers == "auto"
    assert settings.daemon.worker_count == config.auto_workers(config.cores_available())
    assert [config.auto_workers(n) for n in (1, 2, 3, 8, 15, 16, 64)] == [3, 3, 4, 9, 16, 16, 16]
    assert config.load(write(folders, "[daemon]\nworkers = 5\n")).daemon.worker_count == 5


def test_cores_available_counts_the_cpu_affinity() -> None:
    """A daemon that systemd pins to some cores (CPUAffinity=) sizes its workers to those."""
    script = ("import os; from mattectl import config; os.sched_setaffinity(0, {min("
              "os.sched_getaffinity(0))}); print(config.cores_available())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "1"


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


WATCH = '[[watch]]\nname = "{name}"\ninput = "{input}"\noutput = "{output}"\n'


@pytest.mark.parametrize("value", ["0", "0.2"])
def test_a_stability_time_too_short_to_see_a_copy_pause_is_refused(folders: Path,
                                                                    value: str) -> None:
    path = write(folders, WATCH.format(name="a", input="in", output="out")
                 + f"stability_s = {value}\n")
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert "read half-written" in problems(exc)["watch[0].stability_s"]
    path.write_text(path.read_text().replace(f"stability_s = {value}",
                                             f"stability_s = {config.MIN_STABILITY_S}"))
    assert config.load(path).watch[0].stability_s == config.MIN_STABILITY_S


@pytest.mark.parametrize(("field", "folder"), [("processed_dir", "done"),
                                               ("failed_dir", "failed")])
def test_originals_moved_to_the_drop_folder_itself_are_refused(folders: Path, field: str,
                                                                folder: str) -> None:
    text = WATCH.format(name="a", input="in", output="out") + 'on_success = "move"\n' \
        'on_failure = "move"\nprocessed_dir = "done"\nfailed_dir = "failed"\n'
    path = write(folders, text.replace(f'"{folder}"', '"in"'))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc) == {f"watch[0].{field}": (
        f"must not be the drop folder {folders / 'in'}: the folder that originals are moved to "
        "is not watched, so no photo would be processed; use another folder or a sub-folder")}
    # A sub-folder of the drop folder is left unwatched by the intake: that works.
    path.write_text(text.replace('"done"', '"in/done"').replace('"failed"', '"in/failed"'))
    assert config.load(path).watch[0].processed_dir == folders / "in" / "done"


def test_originals_moved_into_another_folders_drop_folder_are_refused(folders: Path) -> None:
    (folders / "in2").mkdir()
    path = write(folders, WATCH.format(name="a", input="in", output="out")
                 + 'on_success = "move"\nprocessed_dir = "in2/done"\n'
                 + WATCH.format(name="b", input="in2", output="out2"))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc) == {"watch[0].processed_dir": (
        f"lies in watch[1]'s drop folder {folders / 'in2'}: originals moved there would be "
        "processed again by that folder")}


@pytest.mark.parametrize("second_output", ["out", "out/b"])
def test_two_folders_sharing_one_output_are_refused(folders: Path, second_output: str) -> None:
    (folders / "in2").mkdir()
    path = write(folders, WATCH.format(name="a", input="in", output="out")
                 + WATCH.format(name="b", input="in2", output=second_output))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc)["watch[1].output"].startswith(
        f"shares its output folder with watch[0] ({folders / 'out'})")


def test_without_a_watch_folder_the_daemon_refuses_and_other_commands_do_not(
        folders: Path) -> None:
    from mattectl.cli.common import load_settings_or_defaults

    path = write(folders, '[models]\nthreads = 1\n')
    with pytest.raises(ConfigError) as exc:
        checks.load(path, checks=checks.DAEMON_CHECKS)  # `mattectl run`, a reload
    assert problems(exc) == {"watch": "no [[watch]] folder: the daemon would watch nothing; add "
                                      "a [[watch]] table (name, input, output) for each drop "
                                      "folder"}
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert isinstance(result.exception, ConfigError)
    assert "no [[watch]] folder" in str(result.exception)
    assert checks.load(path).watch == []  # `status` and `jobs` still read the job log
    assert load_settings_or_defaults(path).watch == []  # `mattectl process`, `eval`, `bench`


def test_state_dir_in_tmp_or_writable_by_others_is_refused(folders: Path) -> None:
    path = write(folders, '[daemon]\nstate_dir = "/tmp"\n'
                 + WATCH.format(name="a", input="in", output="out"))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc)["daemon.state_dir"].startswith("/tmp may be written by anyone (mode ")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert isinstance(result.exception, ConfigError)
    assert "daemon.state_dir" in str(result.exception)
    shared = folders / "shared"
    shared.mkdir()
    shared.chmod(0o770)
    path.write_text(path.read_text().replace('"/tmp"', f'"{shared}"'))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert "may be written by its group (mode 0770)" in problems(exc)["daemon.state_dir"]
    shared.chmod(0o750)  # others may read, not write: used as it is
    assert config.load(path).daemon.state_dir == shared
    (folders / "link").symlink_to(shared)
    path.write_text(path.read_text().replace(f'"{shared}"', f'"{folders / "link"}"'))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert problems(exc)["daemon.state_dir"].endswith("is a symbolic link: name the folder itself")


def test_web_listen_is_host_and_port(folders: Path) -> None:
    base = '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\n[web]\n'
    for listen, host, port in (("127.0.0.1:8750", "127.0.0.1", 8750), ("[::1]:80", "::1", 80),
                               ("studio-pc:9000", "studio-pc", 9000)):
        settings = config.load(write(folders, base + f'listen = "{listen}"\n'))
        assert settings.web.address == (host, port) and not settings.web.enabled
    for bad in ("8750", "127.0.0.1", "127.0.0.1:http", ":8750", "127.0.0.1:70000"):
        with pytest.raises(ConfigError) as exc:
            config.load(write(folders, base + f'listen = "{bad}"\n'))
        assert "not host:port" in problems(exc)["web.listen"]


def test_a_page_beyond_loopback_without_a_token_is_refused(folders: Path) -> None:
    base = '[[watch]]\nname = "a"\ninput = "in"\noutput = "out"\n[web]\nenabled = true\n'
    with pytest.raises(ConfigError) as exc:
        config.load(write(folders, base + 'listen = "0.0.0.0:8750"\ntoken = false\n'))
    assert "web.token = true" in problems(exc)["web.listen"]
    assert config.load(write(folders, base + 'listen = "0.0.0.0:8750"\n')).web.token
    assert not config.load(write(folders, base + 'token = false\n')).web.token  # on loopback


# -- [database] ---------------------------------------------------------------------------------

def test_the_job_log_defaults_to_the_sqlite_file_in_the_state_dir(folders: Path) -> None:
    settings = config.load(write(folders, '[daemon]\nstate_dir = "st"\n'))
    assert settings.database_url is None
    assert settings.job_log == settings.database_path == folders / "st" / "jobs.sqlite3"


def test_a_postgresql_url_from_the_file_the_env_or_a_credential_file(
        folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_DATABASE_URL, raising=False)
    path = write(folders, '[database]\nurl = "postgresql://u:pw@db/studio"\nhost_name = "gpu1"\n')
    settings = config.load(path)
    assert settings.job_log == "postgresql+psycopg://u:pw@db/studio"  # psycopg 3
    assert settings.job_log_shown == "postgresql+psycopg://u:***@db/studio"
    assert settings.host_name == "gpu1"
    secret = folders / "database-url"
    secret.write_text("postgresql+psycopg://u:from-file@db/studio\n")
    path = write(folders, f'[database]\nurl_file = "{secret}"\n')
    assert config.load(path).job_log == "postgresql+psycopg://u:from-file@db/studio"
    monkeypatch.setenv(config.ENV_DATABASE_URL, "postgresql://u:env@db2/x")
    assert config.load(path).job_log == "postgresql+psycopg://u:env@db2/x"


def test_database_problems_name_their_key_and_never_the_password(
        folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.ENV_DATABASE_URL, raising=False)
    cases = {
        '[database]\nurl = "mysql://u:hunter2@db/x"\n': ("database.url", "unsupported"),
        '[database]\nurl = "u:hunter2@db"\n': ("database.url", "not a database URL"),
        '[database]\nurl_file = "missing"\n': ("database.url_file", "cannot read"),
        '[database]\nurl = "postgresql://u:hunter2@db/x"\nurl_file = "f"\n':
            ("database.url_file", "not both"),
        '[database]\nhost_name = "a:b"\n': ("database.host_name", "pattern"),
    }
    for text, (key, words) in cases.items():
        with pytest.raises(ConfigError) as exc:
            config.load(write(folders, text))
        assert words in problems(exc)[key] and "hunter2" not in str(exc.value), text


def test_mask_url() -> None:
    assert config.mask_url("postgresql+psycopg://u:p@ss:w@rd@h:5432/db") == \
        "postgresql+psycopg://u:***@h:5432/db"
    assert config.mask_url("postgresql+psycopg://u@/db?host=/run&password=x&a=b") == \
        "postgresql+psycopg://u@/db?host=/run&password=***&a=b"
    assert config.mask_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
