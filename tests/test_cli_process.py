"""`mattectl process` through the staged pipeline with the real u2netp model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from .clikit import mattectl, write_config

# `mattectl process` in a subprocess with the real u2netp: not in the fast lane.
pytestmark = pytest.mark.slow


def test_process_writes_every_cutout_and_reports_the_bad_file(
        tmp_path: Path, shared_models: Path, human_photos: list[Path]) -> None:
    photos = sorted(human_photos, key=lambda p: p.stat().st_size)[:3]
    inbox = tmp_path / "in"
    (inbox / "sub").mkdir(parents=True)
    for photo in photos[:2]:
        shutil.copy(photo, inbox / photo.name)
    shutil.copy(photos[2], inbox / "sub" / photos[2].name)
    (inbox / "broken.jpg").write_bytes(b"this is not a photo")
    done = mattectl("process", inbox, "--out", tmp_path / "out", "--batch", "2",
                    "--config", write_config(tmp_path, shared_models))

    assert done.returncode == 1
    assert "3 cutout(s) written" in done.stdout
    assert "1 failed" in done.stdout
    assert "broken.jpg" in done.stderr
    assert "not an image" in done.stderr
    outputs = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*")
                     if p.is_file())
    assert outputs == sorted([Path(photos[0].stem + ".png"), Path(photos[1].stem + ".png"),
                              Path("sub") / (photos[2].stem + ".png")])
    for photo in photos[:2]:
        with Image.open(tmp_path / "out" / f"{photo.stem}.png") as cutout:
            assert cutout.mode == "RGBA"
            assert cutout.size == Image.open(photo).size
    assert (inbox / "broken.jpg").read_bytes() == b"this is not a photo"  # input untouched
