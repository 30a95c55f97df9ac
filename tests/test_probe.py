"""The U²-Net backend's subject probe: real u2netp on real photos, and the pure mask-to-subject
step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.backends.cache import ModelCache
from mattectl.backends.probe import expand, probe, shrink, subject_of
from mattectl.config import ModelsConfig

# Picked by looking at them: people seen whole, small in a wide frame...
FULL_BODY = ["track-runners-hurdles-1280.jpg", "5-mental-skills-of-successful-athletes-image.jpg"]
# ...and head-and-shoulders portraits.
PORTRAITS = ["19035828_web1__12294096_web1_180615-PNR-newmayorchallenge.jpg",
             "photo-1552374196-c4e7ffc6e126.jpeg"]


def rgb_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def u2netp(shared_models: Path):
    cache = ModelCache(ModelsConfig(), shared_models)
    yield cache.get("u2netp")
    cache.unload_all()


def test_subject_of_scales_the_box_and_ignores_specks() -> None:
    mask = np.zeros((320, 320), np.float32)
    mask[80:240, 100:180] = 0.9  # the person
    mask[300:302, 5:7] = 0.8  # a speck: counted in the area, not in the box
    fraction, box = subject_of(mask, 640, 480)
    assert box == (200, 120, 360, 360)
    assert fraction == pytest.approx((160 * 80 + 4) / 320**2)


def test_subject_of_two_people_boxes_both() -> None:
    mask = np.zeros((320, 320), np.float32)
    mask[100:300, 20:60] = 1.0
    mask[120:300, 250:300] = 1.0
    assert subject_of(mask, 320, 320)[1] == (20, 100, 300, 300)


def test_subject_of_an_empty_mask() -> None:
    assert subject_of(np.zeros((320, 320), np.float32), 100, 100) == (0.0, None)


def test_shrink_gives_the_network_input_size() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for resample in ("official", "lanczos"):
        small = shrink(rgb, resample)
        assert small.shape == (320, 320, 3)
        assert small.dtype == np.uint8


@pytest.mark.slow
def test_full_body_shots_get_smaller_fractions_than_portraits(
        u2netp, human_photos: list[Path]) -> None:
    by_name = {p.name: p for p in human_photos}
    fractions = {name: probe(u2netp, rgb_of(by_name[name]), "official").fraction
                 for name in FULL_BODY + PORTRAITS}
    assert max(fractions[n] for n in FULL_BODY) < min(fractions[n] for n in PORTRAITS), fractions
    # ...and on the right side of the shipped presets' small-subject threshold.
    assert all(fractions[n] < 0.25 for n in FULL_BODY), fractions
    assert all(fractions[n] >= 0.25 for n in PORTRAITS), fractions


@pytest.mark.slow
def test_the_probe_box_holds_the_person(u2netp, human_photos: list[Path]) -> None:
    path = next(p for p in human_photos if p.name == "Two_dancers.jpg")
    rgb = rgb_of(path)
    found = probe(u2netp, rgb, "official")
    reference = np.asarray(Image.open(path.parents[1] / "u2net_test_human_images_results"
                                      / f"{path.stem}.png").convert("L")) >= 128
    assert found.box is not None
    x0, y0, x1, y1 = found.box
    inside = reference[y0:y1, x0:x1].sum()
    assert inside / reference.sum() > 0.97  # the box misses almost none of the person


@pytest.mark.slow
def test_the_probe_mask_is_the_full_run_of_its_model(u2netp, small_photo: Path) -> None:
    rgb = rgb_of(small_photo)
    found = probe(u2netp, rgb, "official")
    reused = expand(found.mask, rgb.shape[1], rgb.shape[0], "official")
    full = u2netp.predict(rgb)
    assert reused.shape == full.shape
    assert float(np.abs(reused - full).mean()) < 0.01
    assert ((reused >= 0.5) == (full >= 0.5)).mean() > 0.99
