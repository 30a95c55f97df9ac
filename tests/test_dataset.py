"""The evaluation set: composites whose stored truth is exactly the alpha they were made with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.errors import InputError
from mattectl.evaluation import dataset
from mattectl.evaluation.dataset import Background, Subject, composite
from mattectl.imageio.matte import decode_matte
from mattectl.imageio.read import decode

from .evalkit import DATA, small_subjects, write_small_set
from .support import need


def flat_subject(width: int = 40, height: int = 30) -> Subject:
    rgb = np.full((height, width, 3), (200, 40, 10), np.uint8)
    alpha = np.zeros((height, width), np.float32)
    alpha[5:, 10:30] = 1.0
    alpha[5:, 9] = 0.4  # 102 / 255: on the 8-bit grid
    return Subject("flat", rgb, alpha)


def test_composite_is_the_alpha_blend_of_subject_and_background() -> None:
    subject = flat_subject()
    background = Background("blue", "plain", np.full((60, 80, 3), (0, 0, 255), np.uint8))
    image, truth = composite(subject, background)
    assert image.shape == (30, 40, 3)
    np.testing.assert_allclose(truth, subject.alpha, atol=1e-7)
    assert image[10, 20].tolist() == [200, 40, 10]  # subject
    assert image[0, 0].tolist() == [0, 0, 255]  # background
    assert image[10, 9].tolist() == [80, 16, 157]  # 0.4 * fg + 0.6 * bg, rounded


def test_truth_is_stored_on_the_8_bit_grid_it_is_saved_with() -> None:
    subject = flat_subject()
    soft = Subject("soft", subject.rgb, np.linspace(0, 1, 30 * 40, dtype=np.float32)
                   .reshape(30, 40))
    background = Background("grey", "plain", np.full((30, 40, 3), 128, np.uint8))
    _, truth = composite(soft, background)
    levels = truth * 255
    assert np.abs(levels - np.round(levels)).max() < 1e-4
    assert len(np.unique(np.round(levels))) > 200  # the ramp kept its levels


def test_a_small_subject_stands_on_the_bottom_edge_centred() -> None:
    subject = flat_subject(40, 30)
    background = Background("grey", "plain", np.full((30, 40, 3), 128, np.uint8))
    _, truth = composite(subject, background, scale=0.5)
    rows, cols = np.nonzero(truth)
    assert truth.shape == (30, 40)
    assert rows.max() == 29  # on the bottom edge
    assert rows.min() >= 15  # half height
    assert cols.min() >= 10
    assert cols.max() < 30  # centred


def test_set_from_real_data_round_trips_exactly(tmp_path: Path) -> None:
    need(DATA)
    entries = write_small_set(tmp_path, subjects=2, backgrounds=2, scales=(1.0, 0.4))
    assert len(entries) == 2 * 2 * 2
    manifest = json.loads((tmp_path / "images" / dataset.MANIFEST).read_text())
    assert {row["kind"] for row in manifest} == {"distractor-person", "busy-foliage"}
    tags = dataset.read_tags(tmp_path / "images")
    assert tags[entries[0].name] == {"background": entries[0].kind, "scale": "1"}

    subjects = {s.name: s for s in small_subjects(2)}
    backgrounds = {b.name: b for b in dataset.standard_backgrounds(DATA)}
    for entry in entries:
        image, truth = composite(subjects[entry.subject], backgrounds[entry.background],
                                 entry.scale)
        stored = decode((tmp_path / "images" / f"{entry.name}.png").read_bytes(), name="x",
                        max_pixels=10**8).rgb
        stored_truth = decode_matte((tmp_path / "alphas" / f"{entry.name}.png").read_bytes(),
                                    name="y")
        np.testing.assert_array_equal(stored, image)
        np.testing.assert_array_equal(stored_truth, truth)
        assert 0 < truth.mean() < 1  # a subject and a background


def test_a_folder_of_someone_elses_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    photo = tmp_path / "images" / "holiday.png"
    photo.write_bytes(b"precious")
    with pytest.raises(InputError, match="choose an empty folder"):
        dataset.write_set(tmp_path, [])
    assert photo.read_bytes() == b"precious"


def test_subjects_cut_out_by_the_real_model(shared_models: Path, human_photos: list[Path]) -> None:
    settings = config.parse({"models": {"dir": str(shared_models), "threads": 1}})
    backend = ModelCache(settings.models, settings.models_dir).get("u2netp")
    photo = min(human_photos, key=lambda p: p.stat().st_size)
    (subject,) = dataset.subjects_from_model([photo], backend.predict)
    assert subject.alpha.shape == subject.rgb.shape[:2]
    assert subject.alpha.max() > 0.9
    assert subject.alpha.min() < 0.1
