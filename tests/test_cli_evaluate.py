"""`mattectl eval` end to end: real u2netp on the evaluation set, text, JSON and report."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .clikit import mattectl, write_config
from .evalkit import DATA, write_small_set
from .support import SHARED, need


@pytest.mark.slow
def test_eval_scores_the_real_model_and_writes_json_and_report(
        tmp_path: Path, shared_models: Path, chromium: Callable[..., str]) -> None:
    need(DATA)
    write_small_set(tmp_path / "set", subjects=2, backgrounds=1)
    cfg = write_config(tmp_path, shared_models)
    done = mattectl("eval", "--images", tmp_path / "set" / "images", "--alphas",
                    tmp_path / "set" / "alphas", "--backend", "u2netp", "--config", cfg,
                    "--json", tmp_path / "eval.json", "--report", tmp_path / "eval.html")
    assert done.returncode == 0, done.stderr
    assert "means per backend, region image" in done.stdout
    assert "means by background" in done.stdout
    assert "SAD: sum of |error| over the region / 1000" in done.stdout  # normalisation stated
    assert "truth read as: 2 x grey matte" in done.stdout

    data = json.loads((tmp_path / "eval.json").read_text())
    means = data["means"]["u2netp"]
    assert means["images"] == 2
    # The real model on real composites: imperfect, but far better than a blank matte.
    assert 0 < means["mae_image"] < 300
    assert data["devices"] == {"u2netp": "cpu"}
    for image in data["images"]:
        score = image["scores"]["u2netp"]
        assert score["error"] is None
        assert image["truth_reading"] == "grey matte"
        assert all(math.isfinite(score[k]) for k in ("sad_image", "grad_band", "conn_band"))

    dom = chromium(tmp_path / "eval.html", "--dump-dom")
    shown = re.search(r'data-shown="(\d+)" data-total="(\d+)"', dom)
    assert shown is not None
    # 2 images x (photo, truth, cutout, heat map; at 100 %: photo, cutout, truth)
    assert shown.groups() == ("14", "14")
    assert all(image["closeup"]["sad"]["u2netp"] > 0 for image in data["images"])


def test_eval_names_every_photo_without_truth(tmp_path: Path, shared_models: Path) -> None:
    need(DATA)
    write_small_set(tmp_path / "set", subjects=2, backgrounds=1)
    for truth in (tmp_path / "set" / "alphas").iterdir():
        truth.unlink()
    done = mattectl("eval", "--images", tmp_path / "set" / "images", "--alphas",
                    tmp_path / "set" / "alphas", "--config", write_config(tmp_path, shared_models))
    assert done.returncode == 1
    assert "2 photo(s)" in done.stderr
    assert "have no truth" in done.stderr


def test_eval_refuses_a_model_that_is_not_installed(tmp_path: Path, shared_models: Path) -> None:
    (tmp_path / "i").mkdir()
    done = mattectl("eval", "--images", tmp_path / "i", "--alphas", tmp_path / "i",
                    "--backend", "u2net", "--config", write_config(tmp_path, shared_models))
    assert done.returncode == 1
    assert "model 'u2net' is not installed" in done.stderr


@pytest.mark.slow
def test_eval_scores_a_rules_preset_and_names_the_rule_each_photo_took(
        tmp_path: Path, shared_models: Path) -> None:
    need(DATA)
    write_small_set(tmp_path / "set", subjects=2, backgrounds=1)
    cfg = write_config(tmp_path, shared_models)
    done = mattectl("eval", "--images", tmp_path / "set" / "images", "--alphas",
                    tmp_path / "set" / "alphas", "--preset", "default", "--backend", "u2netp",
                    "--config", cfg, "--json", tmp_path / "eval.json")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "eval.json").read_text())
    assert set(data["means"]) == {"u2netp", "preset:default"}
    for image in data["images"]:
        score = image["scores"]["preset:default"]
        assert score["error"] is None
        # Only u2netp is installed here, so whichever rule matched, u2netp ran.
        assert score["rule"].startswith("rule ") and "u2netp" in score["rule"]
        assert "rule" not in image["scores"]["u2netp"]
    assert "preset:default" in done.stdout


def test_eval_rejects_an_unknown_preset(tmp_path: Path, shared_models: Path) -> None:
    (tmp_path / "i").mkdir()
    done = mattectl("eval", "--images", tmp_path / "i", "--alphas", tmp_path / "i",
                    "--preset", "no-such-preset", "--config", write_config(tmp_path, shared_models))
    assert done.returncode != 0
    assert "no-such-preset" in done.stderr


@pytest.mark.slow
def test_eval_scores_finish_settings_side_by_side_on_hair_truth(
        tmp_path: Path, shared_models: Path) -> None:
    """One photo with studio hair truth: the model's own alpha against the matted band."""
    hairgt = need(SHARED / "data" / "hairgt")
    name = "am_GT20_plush_hair_tuft.png"  # the smallest file of the set
    for kind in ("images", "alphas"):
        (tmp_path / kind).mkdir()
        shutil.copy(hairgt / kind / name, tmp_path / kind / name)
    cfg = write_config(tmp_path, shared_models)
    done = mattectl("eval", "--images", tmp_path / "images", "--alphas", tmp_path / "alphas",
                    "--backend", "u2netp", "--config", cfg, "--json", tmp_path / "eval.json",
                    "--finish", "lanczos,off,no-holes", "--finish", "lanczos,matting,holes")
    assert done.returncode == 0, done.stderr
    assert "holes" in done.stdout
    means = json.loads((tmp_path / "eval.json").read_text())["means"]
    raw = means["u2netp · lanczos · edges off · no fill"]
    matted = means["u2netp · lanczos · edges matting · holes filled"]
    assert matted["sad_image"] < 0.9 * raw["sad_image"]
    assert matted["grad_image"] < 0.9 * raw["grad_image"]
