"""The crop-safety measurement: frames of people of every size, the split, the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mattectl.evaluation import crops
from mattectl.evaluation.dataset import Background, Subject


def subject(name: str) -> Subject:
    rgb = np.full((200, 100, 3), 180, np.uint8)
    alpha = np.zeros((200, 100), np.float32)
    alpha[20:190, 30:70] = 1
    return Subject(name, rgb, alpha)


BACKGROUNDS = [Background(f"bg{i}", "test", np.full((50, 50, 3), 40 * i, np.uint8))
               for i in range(3)]


def test_frames_are_the_same_every_run_and_in_any_selection() -> None:
    people = [subject("ann"), subject("bob")]
    first = list(crops.frames(people, BACKGROUNDS, (1.0, 0.2), per_subject=2))
    alone = list(crops.frames(people[1:], BACKGROUNDS, (1.0, 0.2), per_subject=2))
    assert len(first) == 8
    by_name = {f.name: f for f in first}
    for f in alone:  # bob's frames do not depend on who else is measured
        np.testing.assert_array_equal(f.image, by_name[f.name].image)
        np.testing.assert_array_equal(f.truth, by_name[f.name].truth)


def test_a_small_subject_covers_its_share_of_the_frame() -> None:
    whole = crops.frame(subject("ann"), BACKGROUNDS[1], 1.0)
    small = crops.frame(subject("ann"), BACKGROUNDS[1], 0.2)
    assert whole.image.shape == small.image.shape == (200, 100, 3)
    assert whole.truth.sum() == pytest.approx(170 * 40, rel=0.01)
    # At a fifth of the size, a twenty-fifth of the area (less where the frame's edge cuts it).
    assert 0.5 / 25 * whole.truth.sum() < small.truth.sum() <= 1.05 / 25 * whole.truth.sum()


def test_the_split_is_fixed_by_name() -> None:
    names = [f"person-{i}" for i in range(40)]
    splits = [crops.split_of(n) for n in names]
    assert set(splits) == {"tune", "held-out"}
    assert splits == [crops.split_of(n) for n in names]


def result(name: str, split: str, preset: float, whole: float, sure: float) -> crops.CropResult:
    return crops.CropResult(name, split, 0.2, preset, whole, True, 1, False, sure, 1 - preset)


def test_the_summary_counts_losses_and_the_table_shows_each_split() -> None:
    results = [result("a", "tune", 0.9, 0.8, 0.9), result("b", "tune", 0.5, 0.7, 0.3),
               result("c", "held-out", 0.6, 0.62, 0.6)]
    s = crops.summarise(results)
    assert (s.photos, s.lost, s.gained) == (3, 1, 1)
    assert s.worst == pytest.approx(0.2)
    assert s.preset_iou == pytest.approx(2.0 / 3)
    text = crops.table(results, "default", "u2netp")
    assert "held-out" in text and "scale 0.2" in text and "33.3%" in text
    values = crops.correlations(results)
    assert values["spearman 1-IoU"] == pytest.approx(-1.0)  # the surer, the better here
    assert math.isnan(crops.summarise([]).preset_iou)


def test_iou_of_alphas() -> None:
    truth = np.zeros((10, 10), np.float32)
    truth[:5] = 1
    assert crops.iou(truth, truth) == 1.0
    assert crops.iou(np.zeros_like(truth), truth) == 0.0
    assert crops.iou(np.zeros_like(truth), np.zeros_like(truth)) == 1.0
