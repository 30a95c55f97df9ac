"""`mattectl rules check`, `mattectl rules explain` and the decision in `mattectl jobs show`,
run as a user runs them: the real CLI in a subprocess, on real photos and weights."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.jobs.worker import JobWorker
from mattectl.matting.pipeline import PhotoPipeline
from mattectl.matting.planner import RulePlanner
from mattectl.store.repository import JobRepository, NewJob
from mattectl.store.status import JobStatus

from .support import REPO_ROOT

PORTRAIT = "photo-1552374196-c4e7ffc6e126.jpeg"


def mattectl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "daemon"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mattectl", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


@pytest.fixture
def config_file(tmp_path: Path, shared_models: Path) -> Path:
    (tmp_path / "in").mkdir()
    path = tmp_path / "mattectl.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"

[models]
dir = "{shared_models}"

[[watch]]
name = "studio"
input = "in"
output = "out"
rules = "live"
latency_budget_ms = 3000
""")
    return path


def portrait(human_photos: list[Path]) -> Path:
    return next(p for p in human_photos if p.name == PORTRAIT)


def test_rules_check_validates_every_preset(config_file: Path) -> None:
    result = mattectl("rules", "check", "-c", str(config_file))
    assert result.returncode == 0, result.stderr
    for name in ("default", "ecommerce", "live", "group-and-small-subjects"):
        assert f"ok {name}:" in result.stdout


def test_rules_check_reports_a_broken_preset_and_fails(config_file: Path) -> None:
    rules = config_file.parent / "rules"
    rules.mkdir()
    (rules / "mine.toml").write_text('[[rules]]\nname = "x"\nmodel = "u3net"\n')
    result = mattectl("rules", "check", "-c", str(config_file))
    assert result.returncode == 2
    assert "mine.toml" in result.stderr
    assert "rules[0].model: unknown model 'u3net'" in result.stderr
    assert "ok default:" in result.stdout  # the others are still checked


@pytest.mark.slow
def test_rules_explain_shows_facts_rules_and_winner_and_writes_nothing(
        config_file: Path, human_photos: list[Path]) -> None:
    photo = str(portrait(human_photos))
    result = mattectl("rules", "explain", photo, "-c", str(config_file), "--folder", "studio")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "decision  u2netp, rule 'fast' of preset 'live'" in out
    assert "1. small-subject  no match" in out
    assert "2. fast           chosen" in out
    assert "budget 3000 ms" in out
    assert "of the frame" in out
    as_json = mattectl("rules", "explain", photo, "-c", str(config_file), "--json",
                       "--preset", "default")
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stdout)
    assert (record["preset"], record["rule"], record["model"]) == ("default", "portrait",
                                                                  "u2netp")
    assert [t["outcome"] for t in record["trace"]] == ["no match", "chosen", "not reached"]
    assert record["facts"]["subject"]["fraction"] >= 0.25
    assert sorted(p.name for p in config_file.parent.iterdir()) == ["in", "mattectl.toml"]


def test_rules_explain_rejects_an_unknown_folder(config_file: Path,
                                                 human_photos: list[Path]) -> None:
    result = mattectl("rules", "explain", str(portrait(human_photos)), "-c", str(config_file),
                      "--folder", "nope")
    assert result.returncode == 2
    assert "no [[watch]] folder named 'nope'" in result.stderr


@pytest.mark.slow
def test_jobs_show_prints_the_decision_readably(config_file: Path,
                                                human_photos: list[Path]) -> None:
    settings = config.load(config_file)
    watch = settings.watch[0]
    target = watch.input / PORTRAIT
    shutil.copyfile(portrait(human_photos), target)
    repo = JobRepository.open(settings.database_path)
    models = ModelCache(settings.models, settings.models_dir)
    try:
        repo.add(NewJob(watch.name, target, PORTRAIT,
                        hashlib.sha256(target.read_bytes()).hexdigest(), target.stat().st_size,
                        target.stat().st_mtime_ns))
        planner = RulePlanner.create(models, settings.daemon.rules_dir, repo.recent_inference)
        worker = JobWorker("test:w0", repo, PhotoPipeline(models, max_pixels=10**8,
                                                            planner=planner),
                           settings, folders=lambda: [watch.name], wake=threading.Event())
        job = worker.run_once()
        assert job is not None
        assert job.status == JobStatus.DONE, job.error
    finally:
        models.unload_all()
        repo.close()
    result = mattectl("jobs", "show", str(job.id), "-c", str(config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split() == ["decision"] for line in lines)
    assert "u2netp, rule 'fast' of preset 'live'" in result.stdout
    assert "its mask reused as the cutout" in result.stdout
    assert '{"' not in result.stdout  # no raw JSON


def test_rules_explain_names_the_output_a_rule_chooses(config_file: Path,
                                                       human_photos: list[Path]) -> None:
    rules = config_file.parent / "rules"
    rules.mkdir()
    (rules / "catalogue.toml").write_text(
        '[[rules]]\nname = "catalogue"\nmodel = "u2netp"\n'
        '[rules.output]\nformat = "jpeg"\nbackground = "#2040c0"\ntrim = true\n')
    result = mattectl("rules", "explain", str(portrait(human_photos)), "-c", str(config_file),
                      "--preset", "catalogue")
    assert result.returncode == 0, result.stderr
    assert ("output    format jpeg, background #2040c0, trim true (rule 'catalogue'; the "
            "folder's settings for the rest)") in result.stdout
    assert "1. catalogue  chosen       u2netp; output format jpeg" in result.stdout
