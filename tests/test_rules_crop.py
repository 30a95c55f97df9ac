"""Crop to the subject: the geometry, and the quality it buys on real photos made small."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mattectl.rules.crop import MAX_CROP_SHARE, crop_box, grow, open_sides, squared
from mattectl.rules.facts import Box

from .support import REPO_ROOT


def test_crop_box_adds_the_margin_and_stays_in_the_frame() -> None:
    assert crop_box(Box(100, 100, 200, 300), 1000, 1000, 0.1) == Box(90, 80, 210, 320)
    assert crop_box(Box(0, 10, 50, 60), 1000, 1000, 0.5) == Box(0, 0, 75, 85)
    assert crop_box(Box(950, 950, 1000, 1000), 1000, 1000, 1.0) == Box(900, 900, 1000, 1000)


def test_no_crop_when_it_would_keep_most_of_the_frame() -> None:
    assert crop_box(Box(0, 0, 900, 900), 1000, 1000, 0.0) is None
    side = int(1000 * MAX_CROP_SHARE**0.5)
    assert crop_box(Box(0, 0, side, side), 1000, 1000, 0.0) is not None


def test_a_crop_is_squared_within_the_frame() -> None:
    assert squared(Box(100, 100, 140, 200), 1000, 1000) == Box(70, 100, 170, 200)
    assert squared(Box(0, 100, 40, 200), 1000, 1000) == Box(0, 100, 100, 200)  # shifted in
    assert squared(Box(10, 0, 990, 100), 1000, 300) == Box(10, 0, 990, 300)  # clipped
    assert squared(Box(100, 100, 140, 200), 1000, 1000, max_aspect=2) == Box(95, 100, 145, 200)


def test_only_sides_inside_the_frame_can_grow() -> None:
    box = Box(0, 100, 200, 300)
    assert open_sides(box, 1000, 300) == ("top", "right")
    assert grow(box, ("top", "right"), 1000, 300, 0.5) == Box(0, 0, 300, 300)
    assert grow(box, ("right",), 250, 300, 1.0) == Box(0, 100, 250, 300)


@pytest.fixture(scope="module")
def measure_crop() -> ModuleType:
    """The benchmark script itself, so this test measures exactly what it reports."""
    path = REPO_ROOT / "scripts" / "measure_crop.py"
    spec = importlib.util.spec_from_file_location("measure_crop", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# A pair of dancers, a footballer in action, a group of five: people seen whole.
PHOTOS = ["Two_dancers.jpg", "lionel-messi-athletes-fashion.jpg",
          "2019-LADIES-NIGHT-2ND-GOMES.jpg"]


@pytest.mark.slow
def test_crop_recovers_the_full_frame_quality_of_a_small_subject(
        measure_crop: ModuleType, shared_models: Path, human_photos: list[Path],
        tmp_path: Path) -> None:
    planner = measure_crop.make_planner(shared_models, tmp_path / "rules", margin=0.1)
    try:
        results = [measure_crop.measure(planner, measure_crop.PHOTOS / name, edge="hard",
                                        max_side=600) for name in PHOTOS]
    finally:
        planner.models.unload_all()
    for r in results:
        assert r.cropped, r
        assert r.crop >= 0.9 * r.full, r  # the bar: 0.9 of the full-frame IoU
    # Without the crop the same photos lose much of it (that is what the crop is for).
    assert np.mean([r.nocrop for r in results]) < 0.8 * np.mean([r.full for r in results])
