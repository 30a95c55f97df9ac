"""Pairing photos with truths, scoring backends on them, and summing up."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError, ModelUnavailableError
from mattectl.evaluation import summary
from mattectl.evaluation.runner import choose_models, evaluate, find_samples

from .evalkit import DATA, ColourRuleBackend, write_small_set
from .support import need


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_every_photo_needs_a_truth_and_all_missing_ones_are_named(tmp_path: Path) -> None:
    grey = np.zeros((8, 8), np.uint8)
    for name in ("a.jpg", "b.png", "c.png"):
        save(tmp_path / "images" / name, np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "alphas" / "a.png", grey)
    with pytest.raises(InputError, match=r"2 photo\(s\).*b\.png, c\.png"):
        find_samples(tmp_path / "images", tmp_path / "alphas")
    save(tmp_path / "alphas" / "b.png", grey)
    save(tmp_path / "alphas" / "c.tif", grey)
    samples = find_samples(tmp_path / "images", tmp_path / "alphas")
    assert [(s.name, s.alpha.name) for s in samples] == [
        ("a", "a.png"), ("b", "b.png"), ("c", "c.tif")]


def test_missing_or_empty_folders_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no such folder"):
        find_samples(tmp_path / "nope", tmp_path / "empty")
    with pytest.raises(InputError, match="no photos"):
        find_samples(tmp_path / "empty", tmp_path / "empty")


def test_a_bad_pair_fails_alone_and_the_rest_is_scored(tmp_path: Path) -> None:
    need(DATA)
    write_small_set(tmp_path, subjects=2, backgrounds=1)
    save(tmp_path / "images" / "wrong-size.png", np.zeros((20, 30, 3), np.uint8))
    save(tmp_path / "alphas" / "wrong-size.png", np.zeros((10, 10), np.uint8))
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    save(tmp_path / "alphas" / "broken.png", np.zeros((10, 10), np.uint8))
    samples = find_samples(tmp_path / "images", tmp_path / "alphas")
    backends = {"keyer": ColourRuleBackend("keyer", 3)}
    results = {r.sample.name: r for r in evaluate(samples, backends)}

    assert "the truth is 10x10 but its photo is 30x20" in results["wrong-size"].error
    assert "broken.png" in results["broken"].error
    scored = [r for r in results.values() if r.error is None]
    assert len(scored) == 2
    for result in scored:
        assert result.sample.tags["background"] == "distractor-person"
        score = result.scores["keyer"]
        assert score.error is None
        assert set(summary.METRIC_KEYS) <= set(score.metrics)
        assert score.metrics["sad_image"] > 0
        preview = Image.open(io.BytesIO(result.previews.cutouts["keyer"]))
        assert max(preview.size) <= 360
        assert preview.size[0] / preview.size[1] == pytest.approx(
            result.width / result.height, rel=0.02)

    means = summary.mean_scores(list(results.values()), "keyer")
    assert means["images"] == 2
    assert means["mae_image"] == pytest.approx(
        np.mean([r.scores["keyer"].metrics["mae_image"] for r in scored]))
    order = summary.worst_first(list(results.values()), ["keyer"])
    assert {r.sample.name for r in order[:2]} == {"wrong-size", "broken"}  # failures lead
    assert order[2].value("keyer", "mae_image") >= order[3].value("keyer", "mae_image")
    data = json.loads(json.dumps(summary.to_json(list(results.values()), ["keyer"],
                                                 {"keyer": "cpu"}), allow_nan=False))
    assert data["means"]["keyer"]["images"] == 2
    assert "distractor-person" in data["groups"]["background"]["keyer"]


def test_models_are_checked_before_any_work(tmp_path: Path, shared_models: Path) -> None:
    settings = config.parse({"models": {"dir": str(shared_models)}})
    models = ModelCache(settings.models, settings.models_dir)
    assert choose_models(models, None) == ["u2netp"]  # what is installed here
    with pytest.raises(InputError, match="unknown model 'u3net'"):
        choose_models(models, ["u3net"])
    with pytest.raises(ModelUnavailableError, match=r"u2net.*not installed"):
        choose_models(models, ["u2net"])
    # u2netp ships with mattectl: nothing runs only when a configured file is missing.
    empty = config.parse({"models": {"dir": str(tmp_path),
                                     "paths": {"u2netp": str(tmp_path / "gone.pth")}}})
    with pytest.raises(ModelUnavailableError, match="no model is installed"):
        choose_models(ModelCache(empty.models, empty.models_dir), None)


def test_each_kind_of_truth_is_scored_as_the_matte_it_holds(tmp_path: Path) -> None:
    # One photo, one matte, the truth shipped three ways: every reading scores the same, and
    # each result says how its truth was read.
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    matte = np.zeros((24, 32), np.uint8)
    matte[6:18, 8:24] = 255
    matte[6:18, 8] = 128
    opaque = np.full_like(matte, 255)
    shipped = {"grey": matte,
               "cutout": np.dstack([photo, matte]),
               "opaque": np.dstack([np.repeat(matte[:, :, None], 3, axis=2), opaque])}
    for name, truth in shipped.items():
        save(tmp_path / "images" / f"{name}.png", photo)
        save(tmp_path / "alphas" / f"{name}.png", truth)
    samples = find_samples(tmp_path / "images", tmp_path / "alphas")
    results = {r.sample.name: r for r in evaluate(samples, {"keyer": ColourRuleBackend("k", 3)})}
    assert {n: r.truth_reading for n, r in results.items()} == {
        "cutout": "alpha channel", "grey": "grey matte",
        "opaque": "grey channels (alpha channel opaque)"}
    mae = {n: r.value("keyer", "mae_image") for n, r in results.items()}
    assert mae["opaque"] == pytest.approx(mae["grey"])
    assert mae["cutout"] == pytest.approx(mae["grey"])
    data = summary.to_json(list(results.values()), ["keyer"], {"keyer": "cpu"})
    assert {i["name"]: i["truth_reading"] for i in data["images"]}["opaque"] == (
        "grey channels (alpha channel opaque)")
