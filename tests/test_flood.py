"""Photos through the real u2netp model in the staged pipeline, as `mattectl process` runs them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl import config
from mattectl.backends.base import MattingBackend
from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.jobs.flood import MattingStages, Photo
from mattectl.jobs.stages import run_all


@pytest.fixture
def u2netp(shared_models: Path) -> MattingBackend:
    settings = config.parse({"models": {"dir": str(shared_models), "threads": 1}})
    return ModelCache(settings.models, settings.models_dir).get("u2netp")


@pytest.fixture
def small_photos(human_photos: list[Path]) -> list[Path]:
    return sorted(human_photos, key=lambda p: p.stat().st_size)[:3]


def test_batched_prediction_equals_one_by_one(u2netp: MattingBackend,
                                               small_photos: list[Path]) -> None:
    images = [np.asarray(Image.open(p).convert("RGB")) for p in small_photos]
    batched = u2netp.predict_batch(images)
    for rgb, alpha in zip(images, batched, strict=True):
        single = u2netp.predict(rgb)
        assert alpha.shape == rgb.shape[:2]
        assert alpha.dtype == np.float32
        # The same network on the same input; only float summation order may differ.
        assert np.abs(alpha - single).max() <= 1 / 255 + 1e-6


def test_photos_become_cutouts_and_a_bad_one_fails_alone(
        u2netp: MattingBackend, small_photos: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"this is a text file, not a photo")
    photos = [Photo(p.name, path=p, target=tmp_path / "out" / f"{p.stem}.png")
              for p in small_photos]
    photos.append(Photo("broken.jpg", path=broken, target=tmp_path / "out" / "broken.png"))
    photos.append(Photo("gone.jpg", path=tmp_path / "in" / "gone.jpg",
                        target=tmp_path / "out" / "gone.png"))
    stages = MattingStages(u2netp, max_pixels=50_000_000)
    outcomes = {o.item.name: o for o in run_all(stages, photos, batch=2, decode_workers=2)}

    for path in small_photos:
        outcome = outcomes[path.name]
        assert outcome.ok, outcome.error
        written = outcome.result.path
        with Image.open(written) as png:
            assert png.mode == "RGBA"
            assert png.size == Image.open(path).size
            alpha = np.asarray(png.getchannel("A"))
        assert alpha.min() < 20 < 235 < alpha.max()  # a real cutout: subject and background
        assert outcome.times.decode_ms > 0
        assert outcome.times.encode_ms > 0
    assert isinstance(outcomes["broken.jpg"].error, InputError)
    assert "gone.jpg: cannot read" in str(outcomes["gone.jpg"].error)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}.png" for p in small_photos)  # nothing for the failures, no temp files
    assert broken.read_bytes().startswith(b"this is")  # inputs are left alone


def test_in_memory_photos_are_not_written(u2netp: MattingBackend,
                                          small_photos: list[Path]) -> None:
    photos = [Photo(p.name, data=p.read_bytes()) for p in small_photos[:1]]
    (outcome,) = run_all(MattingStages(u2netp, max_pixels=50_000_000), photos)
    assert outcome.ok
    assert outcome.result.path is None
    assert outcome.result.png_bytes > 0
    assert Image.open(io.BytesIO(small_photos[0].read_bytes())).size == (
        outcome.result.width, outcome.result.height)


def _long_side(path: Path) -> int:
    with Image.open(path) as img:
        return max(img.size)


def test_the_encode_stage_is_refinement_then_writing(u2netp: MattingBackend,
                                                      human_photos: list[Path],
                                                      tmp_path: Path) -> None:
    stages = MattingStages(u2netp, max_pixels=50_000_000)
    # The smallest photo enlarged enough from 320 px for its alpha to be refined (1.5x).
    source = min((p for p in human_photos if _long_side(p) >= 480),
                 key=lambda p: p.stat().st_size)
    image = stages.decode(Photo(source.name, path=source))
    (alpha,) = stages.infer([image])
    cut = stages.refine(image, alpha)
    # Clean edges changed the alpha enlarged from 320x320 and the colour at its edges.
    assert not np.array_equal(cut.alpha, alpha)
    assert not np.array_equal(cut.colour, image.pixels)
    in_steps = stages.write(Photo(source.name, target=tmp_path / "steps.png"), image, cut)
    whole = stages.encode(Photo(source.name, target=tmp_path / "whole.png"), image, alpha)
    assert in_steps.path.read_bytes() == whole.path.read_bytes()
    with Image.open(in_steps.path) as png:
        written = np.asarray(png.getchannel("A"))
    assert np.array_equal(written, np.clip(cut.alpha * 255 + 0.5, 0, 255).astype(np.uint8))
