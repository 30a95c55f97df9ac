"""Thumbnails of finished cutouts: made once from the cutout's bytes, pruned with the jobs."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.app import Daemon
from mattectl.config import Settings
from mattectl.imageio.preview import thumbnail_webp
from mattectl.store.repository import Job, JobRepository, JobResult, NewJob
from mattectl.thumbnails import ThumbnailStore


def encoded(mode: str, size: tuple[int, int], fmt: str = "PNG", **options: object) -> bytes:
    colour = {"RGBA": (10, 200, 30, 128), "RGB": (10, 200, 30), "L": 128, "I;16": 40000}[mode]
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("RGB", "JPEG"), ("L", "PNG"),
                                           ("I;16", "PNG"), ("RGBA", "TIFF"), ("RGBA", "WEBP")])
def test_a_thumbnail_of_any_cutout_format_is_a_small_webp(mode: str, fmt: str) -> None:
    data = thumbnail_webp(encoded(mode, (1000, 600), fmt), 256)
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (256, 154)
        if mode == "RGBA":  # the transparency survives
            alpha = np.asarray(thumb.convert("RGBA"))[:, :, 3]
            assert 100 < alpha.mean() < 160


def test_a_small_cutout_is_not_enlarged_and_garbage_is_refused() -> None:
    with Image.open(io.BytesIO(thumbnail_webp(encoded("RGBA", (40, 30)), 256))) as thumb:
        assert thumb.size == (40, 30)
    with pytest.raises(ValueError, match="decode"):
        thumbnail_webp(b"not an image")


def done_job(repo: JobRepository, tmp_path: Path, name: str, cutout: bytes) -> Job:
    source = tmp_path / "in" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(name.encode())
    job, _ = repo.add(NewJob("studio", source, name, hashlib.sha256(name.encode()).hexdigest(),
                             1, 1))
    repo.claim("h:1:w0", ["studio"])
    return repo.finish(job.id, "h:1:w0", JobResult(
        output_path=tmp_path / "out" / name, output_hash=hashlib.sha256(cutout).hexdigest()))


def test_thumbnails_are_made_once_per_cutout_and_pruned_with_their_jobs(
        repo: JobRepository, tmp_path: Path) -> None:
    store = ThumbnailStore(tmp_path / "state" / "web" / "thumbnails")
    kept = done_job(repo, tmp_path, "kept.png", cutout := encoded("RGBA", (300, 300)))
    gone = done_job(repo, tmp_path, "gone.png", cutout)
    assert store.make(kept, cutout) is not None and store.make(gone, cutout) is not None
    assert store.read(kept) is not None
    assert (store.folder.stat().st_mode & 0o777) == 0o700
    # A job retried into another cutout: its old picture is stale.
    retried = replace(kept, output_hash="f" * 64)
    assert store.read(retried) is None
    repo.prune(gone.finished_at.replace(year=gone.finished_at.year + 1))  # every row
    survivor = done_job(repo, tmp_path, "new.png", encoded("RGBA", (30, 30)))
    assert store.make(survivor, encoded("RGBA", (30, 30))) is not None
    assert store.prune(repo.output_hashes) == 2
    assert [p.name for p in store.folder.iterdir()] == [store.path(survivor).name]
    # SQLite may give a pruned job's id again: the newcomer never shows the old picture.
    assert store.read(replace(kept, output_hash=survivor.output_hash)) is None or \
        survivor.id == kept.id


def test_a_cutout_that_cannot_be_read_leaves_the_job_without_a_thumbnail(
        repo: JobRepository, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ThumbnailStore(tmp_path / "state" / "web" / "thumbnails")
    job = done_job(repo, tmp_path, "odd.png", b"garbage")
    assert store.make(job, b"garbage") is None
    assert "no thumbnail" in caplog.text and store.read(job) is None


def test_the_daemons_prune_removes_the_thumbnails_of_pruned_rows(
        make_settings: Callable[..., Settings], repo: JobRepository, tmp_path: Path) -> None:

    daemon = Daemon(make_settings(daemon={"retention_days": 1}, web={"enabled": True}))
    daemon.repo = repo  # (the job log the daemon opens at start)
    cutout = encoded("RGBA", (50, 50))
    old, new = (done_job(repo, tmp_path, name, cutout) for name in ("old.png", "new.png"))
    for job in (old, new):
        assert daemon.thumbnails.make(job, cutout) is not None
    with sqlite3.connect(repo.path) as db:  # finished two days ago
        db.execute("UPDATE jobs SET finished_at = datetime('now', '-2 days') WHERE id = ?",
                   (old.id,))
    daemon.prune()
    assert daemon.thumbnails.read(old) is None and daemon.thumbnails.read(new) is not None
