"""The CLI commands a person types, run in-process with Typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import mattectl
from mattectl.cli.main import app
from mattectl.config import Settings
from mattectl.errors import DaemonNotRunningError, InvalidTransitionError
from mattectl.store.repository import JobRepository, JobResult, NewJob

from .support import REPO_ROOT

runner = CliRunner()


def write_config(tmp_path: Path, models: Path) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "mattectl.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n[models]\ndir = "{models}"\n'
                    '[[watch]]\nname = "studio"\ninput = "in"\noutput = "out"\n')
    return path


@pytest.mark.slow
def test_process_cuts_out_files_and_folders(tmp_path: Path, shared_models: Path,
                                            human_photos: list[Path]) -> None:
    config = write_config(tmp_path, shared_models)
    album = tmp_path / "album" / "day1"
    album.mkdir(parents=True)
    shutil.copyfile(human_photos[0], album / "a.jpg")
    (album / ".hidden.jpg").write_bytes(b"ignored")
    (tmp_path / "album" / "broken.jpg").write_bytes(b"nope")
    result = runner.invoke(app, ["process", str(tmp_path / "album"), str(human_photos[1]),
                                 "--out", str(tmp_path / "cutouts"), "--config", str(config)])
    assert result.exit_code == 1, result.output  # one photo failed
    assert "2 cutout(s) written" in result.output
    assert "broken.jpg" in result.output and "not an image" in result.output
    first = tmp_path / "cutouts" / "day1" / "a.png"
    second = tmp_path / "cutouts" / f"{human_photos[1].stem}.png"
    for out, src in ((first, human_photos[0]), (second, human_photos[1])):
        with Image.open(out) as img:
            assert img.mode == "RGBA" and img.size == Image.open(src).size
    # Running again never overwrites without --overwrite.
    runner.invoke(app, ["process", str(human_photos[1]), "--out", str(tmp_path / "cutouts"),
                        "--config", str(config)])
    assert (tmp_path / "cutouts" / f"{human_photos[1].stem}-1.png").exists()


def test_process_without_weights_says_how_to_get_them(tmp_path: Path, small_photo: Path) -> None:
    # u2netp is shipped with mattectl; u2net must be pulled first.
    config = write_config(tmp_path, tmp_path / "empty-models")
    result = runner.invoke(app, ["process", str(small_photo), "--out", str(tmp_path / "o"),
                                 "--model", "u2net", "--config", str(config)])
    assert "`mattectl models pull u2net`" in str(result.exception)


def test_status_before_the_daemon_ever_ran_exits_3(tmp_path: Path, shared_models: Path) -> None:
    config = write_config(tmp_path, shared_models)
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert isinstance(result.exception, DaemonNotRunningError)
    code = subprocess.run([sys.executable, "-m", "mattectl", "status", "--config", str(config)],
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO_ROOT / "daemon"), "PATH": "/usr/bin"})
    assert code.returncode == 3 and "never run" in code.stderr


def test_jobs_show_and_retry(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(watch={"name": "studio"})
    config = tmp_path / "mattectl.toml"
    config.write_text(f'[daemon]\nstate_dir = "{settings.daemon.state_dir}"\n'
                      f'[models]\ndir = "{settings.models_dir}"\n')
    repo = JobRepository.open(settings.database_path)
    job, _ = repo.add(NewJob("studio", tmp_path / "a.jpg", "a.jpg", "ab" * 32, 1, 1))
    repo.claim("w", ["studio"])
    repo.fail(job.id, "w", "a.jpg: corrupt or truncated JPEG", JobResult(model="u2netp"))
    repo.close()

    shown = runner.invoke(app, ["jobs", "show", str(job.id), "--config", str(config)])
    assert shown.exit_code == 0 and "corrupt or truncated JPEG" in shown.output
    as_json = json.loads(runner.invoke(app, ["jobs", "show", str(job.id), "--json",
                                             "--config", str(config)]).output)
    assert as_json["status"] == "failed" and as_json["model"] == "u2netp"

    retried = runner.invoke(app, ["jobs", "retry", "--failed", "--config", str(config)])
    assert retried.exit_code == 0 and f"re-queued 1 job(s): {job.id}" in retried.output
    listed = json.loads(runner.invoke(app, ["jobs", "list", "--json", "--status", "queued",
                                            "--config", str(config)]).output)
    assert [j["id"] for j in listed] == [job.id]
    for flags, expected in ((["--folder", "studio", "--limit", "1"], [job.id]),
                            (["--folder", "elsewhere"], [])):
        chosen = runner.invoke(app, ["jobs", "list", "--json", *flags, "--config", str(config)])
        assert [j["id"] for j in json.loads(chosen.output)] == expected
    # A queued (or running) job is not re-queued under a worker's feet.
    again = runner.invoke(app, ["jobs", "retry", str(job.id), "--config", str(config)])
    assert isinstance(again.exception, InvalidTransitionError)  # main() prints it, exit 1
    assert "only from done, failed" in str(again.exception)
    usage = runner.invoke(app, ["jobs", "retry", "--config", str(config)])
    assert usage.exit_code == 2


def test_jobs_show_and_status_flag_a_low_confidence_cutout(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(watch={"name": "studio"})
    config = tmp_path / "mattectl.toml"
    config.write_text(f'[daemon]\nstate_dir = "{settings.daemon.state_dir}"\n'
                      f'[models]\ndir = "{settings.models_dir}"\n[[watch]]\nname = "studio"\n'
                      f'input = "{tmp_path / "in"}"\noutput = "{tmp_path / "out"}"\n')
    (tmp_path / "in").mkdir()
    repo = JobRepository.open(settings.database_path)
    job, _ = repo.add(NewJob("studio", tmp_path / "a.jpg", "a.jpg", "ab" * 32, 1, 1))
    repo.claim("w", ["studio"])
    check = {"box": [0, 0, 50, 50], "rounds": 2, "touched": [["bottom"], []],
             "whole_frame": False, "merged_px": 0}
    repo.finish(job.id, "w", JobResult(model="u2netp", confidence=0.4234,
                                       decision={"model": "u2netp", "crop_check": check}))
    repo.close()

    shown = runner.invoke(app, ["jobs", "show", str(job.id), "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "0.423 (low: check the cutout)" in shown.output
    assert "the subject touched the crop's bottom border" in shown.output
    status = runner.invoke(app, ["status", "--config", str(config)])
    assert f"low confidence 0.42: job {job.id}: a.jpg (studio): check the cutout" in " ".join(
        status.output.split())


@pytest.mark.parametrize("args", [["--help"], ["jobs", "--help"], ["config", "--help"]])
def test_help(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "Usage" in result.output


def test_version_is_the_packages() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"mattectl {mattectl.__version__}\n")
    assert 'version = { attr = "mattectl.__version__" }' in \
        (REPO_ROOT / "pyproject.toml").read_text()  # one version, not two to keep equal


@pytest.mark.slow  # a real bash, and mattectl started three times
def test_install_completion_then_bash_completes_commands_and_model_names(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `python -m mattectl`, as the tests start it: completion must still be for `mattectl`.
    (bin_dir / "mattectl").write_text(f'#!/bin/sh\nPYTHONPATH="{REPO_ROOT / "daemon"}" '
                                      f'exec "{sys.executable}" -m mattectl "$@"\n')
    (bin_dir / "mattectl").chmod(0o755)
    env = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin", "SHELL": bash}
    # Typer finds the shell it is installed for from the process that started it: bash here.
    installed = subprocess.run([bash, "-c", "mattectl --install-completion"], env=env,
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed" in installed.stdout
    assert "source" in (tmp_path / ".bashrc").read_text()

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        script = (f"source {tmp_path / '.bash_completions' / 'mattectl.sh'}\n"
                  f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
                  "_mattectl_completion mattectl; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
        done = subprocess.run([bash, "-c", script], env=env, capture_output=True, text=True,
                              timeout=120)
        return done.stdout.split()

    assert complete("mattectl mo") == ["models"]
    assert complete("mattectl models pull u2net_") == ["u2net_human_seg"]
