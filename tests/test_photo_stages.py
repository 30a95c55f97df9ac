"""Photos through the real u2netp model on the one path, as stages of the StagedPipeline (as
`mattectl process` and `mattectl bench` run them)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.imageio.compose import to_uint8
from mattectl.matting.pipeline import Cutout, Photo, PhotoPipeline, PhotoStages, Recipe
from mattectl.matting.publish import publish_cutout
from mattectl.matting.stages import run_all

# The real u2netp on real photos, seconds per test: not in the fast lane.
pytestmark = pytest.mark.slow


@pytest.fixture
def models(shared_models: Path) -> ModelCache:
    settings = config.parse({"models": {"dir": str(shared_models), "threads": 1}})
    cache = ModelCache(settings.models, settings.models_dir)
    yield cache
    cache.unload_all()


@pytest.fixture
def pipeline(models: ModelCache) -> PhotoPipeline:
    return PhotoPipeline(models, max_pixels=50_000_000)


@pytest.fixture
def small_photos(human_photos: list[Path]) -> list[Path]:
    return sorted(human_photos, key=lambda p: p.stat().st_size)[:3]


@pytest.mark.parametrize(("precision", "levels"), [("float32", 1), ("bfloat16", 4)])
def test_batched_prediction_equals_one_by_one(shared_models: Path, small_photos: list[Path],
                                               precision: str, levels: int) -> None:
    settings = config.parse({"models": {"dir": str(shared_models), "threads": 1,
                                        "u2net": {"precision": precision}}})
    cache = ModelCache(settings.models, settings.models_dir)
    u2netp = cache.get("u2netp")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in small_photos]
    batched = u2netp.predict_batch(images)
    for rgb, alpha in zip(images, batched, strict=True):
        single = u2netp.predict(rgb)
        assert alpha.shape == rgb.shape[:2]
        assert alpha.dtype == np.float32
        # The same network on the same input; only the summation order may differ, which
        # moves bfloat16's coarser sums more (measured: up to 3 levels of 255).
        assert np.abs(alpha - single).max() <= levels / 255 + 1e-6
    cache.unload_all()


def test_photos_become_cutouts_and_a_bad_one_fails_alone(
        pipeline: PhotoPipeline, small_photos: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"this is a text file, not a photo")
    out = tmp_path / "out"
    photos = [Photo(p.name, path=p) for p in small_photos]
    photos.append(Photo("broken.jpg", path=broken))
    photos.append(Photo("gone.jpg", path=tmp_path / "in" / "gone.jpg"))

    def write(photo: Photo, cutout: Cutout) -> Path | None:
        target = out / Path(photo.name).with_suffix(".png")
        return publish_cutout(cutout.data, target, root=out, policy="suffix", name=photo.name)

    stages = PhotoStages(pipeline, Recipe("u2netp"), write)
    outcomes = {o.item.name: o for o in run_all(stages, photos, batch=2, decode_workers=2)}

    for path in small_photos:
        outcome = outcomes[path.name]
        assert outcome.ok, outcome.error
        with Image.open(outcome.result) as png:
            assert png.mode == "RGBA"
            assert png.size == Image.open(path).size
            alpha = np.asarray(png.getchannel("A"))
        assert alpha.min() < 20 < 235 < alpha.max()  # a real cutout: subject and background
        assert outcome.times.decode_ms > 0
        assert outcome.times.encode_ms > 0
    assert isinstance(outcomes["broken.jpg"].error, InputError)
    assert "gone.jpg: cannot read" in str(outcomes["gone.jpg"].error)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{p.stem}.png" for p in small_photos)  # nothing for the failures, no temp files
    assert broken.read_bytes().startswith(b"this is")  # inputs are left alone


def test_the_stages_give_the_same_bytes_as_one_run(pipeline: PhotoPipeline,
                                                     small_photos: list[Path]) -> None:
    """A fixed model in the staged pipeline and the daemon's one-photo run are the same path:
    the same file, byte for byte (one photo per inference call, as the daemon makes them: a
    batch may sum in another order)."""
    recipe = Recipe("u2netp")
    photos = [Photo(p.name, data=p.read_bytes()) for p in small_photos]
    staged = {o.item.name: o.result for o in run_all(PhotoStages(pipeline, recipe), photos,
                                                      decode_workers=2)}
    for photo in photos:
        alone = pipeline.run(photo, recipe)
        assert staged[photo.name].data == alone.data
        assert (staged[photo.name].width, staged[photo.name].height) == (alone.width,
                                                                         alone.height)


def _long_side(path: Path) -> int:
    with Image.open(path) as img:
        return max(img.size)


def test_finish_refines_the_alpha_then_encodes(pipeline: PhotoPipeline,
                                               human_photos: list[Path]) -> None:
    # The smallest photo enlarged enough from 320 px for its alpha to be refined (1.5x).
    source = min((p for p in human_photos if _long_side(p) >= 480),
                 key=lambda p: p.stat().st_size)
    recipe = Recipe("u2netp")
    decoded = pipeline.decode(Photo(source.name, path=source))
    matte = pipeline.matte(decoded, source.name, recipe)
    cutout = pipeline.finish(decoded, matte, recipe)
    assert 0 < cutout.refine_ms < cutout.encode_ms
    with Image.open(io.BytesIO(cutout.data)) as png:
        written = np.asarray(png.getchannel("A"))
    # Clean edges changed the alpha enlarged from 320x320...
    assert not np.array_equal(written, to_uint8(matte.alpha))
    # ...and without them the file holds the model's alpha as it came.
    plain = pipeline.finish(decoded, matte, Recipe("u2netp", options=replace(
        recipe.options, clean_edges=False)))
    with Image.open(io.BytesIO(plain.data)) as png:
        unrefined = np.asarray(png.getchannel("A"))
    assert np.array_equal(unrefined, to_uint8(matte.alpha))
