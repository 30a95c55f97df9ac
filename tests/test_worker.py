"""The worker with the real u2netp, real files and a real job log."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from mattectl.app import Daemon
from mattectl.backends.cache import ModelCache
from mattectl.config import Settings
from mattectl.fsutil import is_temp
from mattectl.jobs.pauses import FolderPauses
from mattectl.jobs.worker import JobWorker
from mattectl.matting.pipeline import PhotoPipeline
from mattectl.store import engine as store_engine
from mattectl.store.manifest import MANIFEST_NAME, DeliveryManifest
from mattectl.store.models import utcnow
from mattectl.store.repository import Job, JobRepository, NewJob
from mattectl.store.status import JobStatus

from .support import queue_photo, wait_for


class Harness:
    def __init__(self, settings: Settings, repo: JobRepository) -> None:
        self.settings = settings
        self.repo = repo
        self.watch = settings.watch[0]
        self.changed: list[Path] = []
        self.pipeline_models = ModelCache(settings.models, settings.models_dir)
        pipeline = PhotoPipeline(self.pipeline_models, max_pixels=settings.daemon.max_pixels)
        self.worker = JobWorker("host:1:w0", repo, pipeline, settings,
                                folders=lambda: [self.watch.name], wake=threading.Event(),
                                on_input_changed=lambda folder, path: self.changed.append(path))

    def drop(self, name: str, data: bytes) -> Job:
        return queue_photo(self.repo, self.watch, name, data)

    def run_all(self) -> list[Job]:
        done = []
        while (job := self.worker.run_once()) is not None:
            done.append(job)
        return done

    def outputs(self) -> list[Path]:
        """The cutouts (and any partial file), not the folder's delivery manifest."""
        return sorted(p for p in self.watch.output.rglob("*")
                      if p.is_file() and p.name != MANIFEST_NAME)


@pytest.fixture
def make_harness(make_settings: Callable[..., Settings],
                 repo: JobRepository) -> Callable[..., Harness]:
    return lambda **watch: Harness(make_settings(watch={"name": "studio", **watch}), repo)


def test_photo_becomes_a_complete_rgba_cutout(make_harness: Callable[..., Harness],
                                               small_photo: Path) -> None:
    h = make_harness()
    job = h.drop("sub/portrait.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    assert done.id == job.id and done.status == JobStatus.DONE, done.error
    assert done.output_path == h.watch.output / "sub" / "portrait.png"
    with Image.open(small_photo) as src, Image.open(done.output_path) as out:
        assert out.mode == "RGBA" and out.size == src.size
        rgba = np.asarray(out)
        # The photo's own values wherever the cutout is opaque or transparent; semi-transparent
        # edges carry the subject's estimated colour (clean_edges, issue 5).
        solid = (rgba[:, :, 3] == 0) | (rgba[:, :, 3] == 255)
        assert np.array_equal(rgba[:, :, :3][solid], np.asarray(src.convert("RGB"))[solid])
    alpha = rgba[:, :, 3]
    assert alpha.min() < 10 and alpha.max() > 245  # a subject and a background
    assert done.model == "u2netp" and done.device == "cpu" and done.attempts == 1
    # The format the model ran in, as its backend chose it (auto: by the machine's verdict).
    assert done.precision == h.pipeline_models.get("u2netp").precision
    assert done.precision in ("float32", "bfloat16")
    for stage in (done.decode_ms, done.inference_ms, done.encode_ms, done.db_ms, done.total_ms):
        assert stage is not None and stage > 0
    assert done.refine_ms is not None and 0 < done.refine_ms <= done.encode_ms
    assert done.confidence is not None and 0 < done.confidence <= 1  # the model's own certainty
    assert (done.width, done.height) == Image.open(small_photo).size
    assert (h.watch.input / "sub" / "portrait.jpg").exists()  # kept by default
    assert [p.name for p in h.outputs()] == ["portrait.png"]  # no temporary file left


def test_bad_inputs_fail_with_readable_errors_and_the_good_one_succeeds(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness()
    data = small_photo.read_bytes()
    h.drop("truncated.jpg", data[: len(data) // 2])
    h.drop("empty.jpg", b"")
    h.drop("text.jpg", b"this is not a photo, it is a note to the retoucher\n")
    h.drop("good.jpg", data)
    by_name = {j.rel_path: j for j in h.run_all()}
    assert by_name["good.jpg"].status == JobStatus.DONE
    assert "truncated" in by_name["truncated.jpg"].error
    assert by_name["empty.jpg"].error == "empty.jpg: empty file (0 bytes)"
    assert "not an image" in by_name["text.jpg"].error
    for name in ("truncated.jpg", "empty.jpg", "text.jpg"):
        assert by_name[name].status == JobStatus.FAILED
        assert (h.watch.input / name).exists()  # never deleted
    assert [p.name for p in h.outputs()] == ["good.png"]


def test_originals_are_moved_on_success_and_failure(make_harness: Callable[..., Harness],
                                                    small_photo: Path, tmp_path: Path) -> None:
    h = make_harness(on_success="move", processed_dir="processed", on_failure="move",
                     failed_dir="failed")
    (tmp_path / "processed" / "day").mkdir(parents=True)
    (tmp_path / "processed" / "day" / "ok.jpg").write_bytes(b"an older photo of the same name")
    h.drop("day/ok.jpg", small_photo.read_bytes())
    h.drop("bad.jpg", b"garbage")
    jobs = {j.rel_path: j for j in h.run_all()}
    moved = tmp_path / "processed" / "day" / "ok-1.jpg"  # never overwrites
    assert jobs["day/ok.jpg"].input_path == moved and moved.read_bytes() == small_photo.read_bytes()
    assert (tmp_path / "processed" / "day" / "ok.jpg").read_bytes() == \
        b"an older photo of the same name"
    assert jobs["bad.jpg"].input_path == tmp_path / "failed" / "bad.jpg"
    assert h.repo.get(jobs["bad.jpg"].id).input_path == tmp_path / "failed" / "bad.jpg"
    assert not (h.watch.input / "bad.jpg").exists()


def test_an_original_that_cannot_be_moved_stays_and_the_job_says_why(
        make_harness: Callable[..., Harness], small_photo: Path, tmp_path: Path) -> None:
    h = make_harness(on_success="move", processed_dir="processed")
    (tmp_path / "processed").write_text("a file where the processed folder should be")
    h.drop("ok.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    row = h.repo.get(done.id)
    assert row.status == JobStatus.DONE and row.output_path is not None
    assert row.input_path == h.watch.input / "ok.jpg"
    assert (h.watch.input / "ok.jpg").read_bytes() == small_photo.read_bytes()
    assert row.error is not None and "the original could not be moved" in row.error
    assert "it stays where it is" in row.error


def test_a_retry_in_another_format_writes_a_file_of_that_format(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness()
    h.drop("a.jpg", small_photo.read_bytes())
    [first] = h.run_all()
    assert first.output_path == h.watch.output / "a.png"
    h.repo.retry(first.id)
    as_jpeg = make_harness(output_format="jpeg")  # the folder (or its rule) changed format
    [again] = as_jpeg.run_all()
    assert again.output_path == h.watch.output / "a.jpg"
    with Image.open(again.output_path) as out:
        assert out.format == "JPEG"
    with Image.open(first.output_path) as out:
        assert out.format == "PNG"  # the earlier cutout is left as it was


def test_collision_policies(make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness()
    h.watch.output.mkdir(parents=True, exist_ok=True)
    (h.watch.output / "a.png").write_bytes(b"someone else's file")
    h.drop("a.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    assert done.output_path == h.watch.output / "a-1.png"
    assert (h.watch.output / "a.png").read_bytes() == b"someone else's file"
    # Retrying the same job rewrites its own output instead of adding a-2.png.
    h.repo.retry(done.id)
    [again] = h.run_all()
    assert again.output_path == done.output_path
    assert len(h.outputs()) == 2


def test_skip_policy_leaves_the_existing_file(make_harness: Callable[..., Harness],
                                              small_photo: Path) -> None:
    h = make_harness(on_collision="skip")
    h.watch.output.mkdir(parents=True, exist_ok=True)
    (h.watch.output / "a.png").write_bytes(b"keep me")
    h.drop("a.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    assert done.status == JobStatus.DONE and done.output_path is None
    assert "already exists" in done.error
    assert (h.watch.output / "a.png").read_bytes() == b"keep me"


def test_input_replaced_after_queueing(make_harness: Callable[..., Harness],
                                       small_photo: Path) -> None:
    h = make_harness()
    job = h.drop("swap.jpg", small_photo.read_bytes())
    (h.watch.input / "swap.jpg").write_bytes(b"new content")
    [failed] = h.run_all()
    assert failed.status == JobStatus.FAILED and "changed after it was queued" in failed.error
    assert h.changed == [job.input_path]  # handed back to the intake as new content
    assert (h.watch.input / "swap.jpg").read_bytes() == b"new content"


def test_input_deleted_after_queueing(make_harness: Callable[..., Harness],
                                      small_photo: Path) -> None:
    h = make_harness(on_failure="move", failed_dir="failed")
    h.drop("gone.jpg", small_photo.read_bytes())
    (h.watch.input / "gone.jpg").unlink()
    [failed] = h.run_all()
    assert failed.status == JobStatus.FAILED and "disappeared" in failed.error


def test_unwritable_output_is_retried_then_fails(make_harness: Callable[..., Harness],
                                                 small_photo: Path) -> None:
    h = make_harness()
    h.watch.output.parent.mkdir(parents=True, exist_ok=True)
    h.watch.output.write_bytes(b"a file where the output folder should be")
    job = h.drop("a.jpg", small_photo.read_bytes())
    [first] = h.run_all()
    assert first.status == JobStatus.QUEUED and "attempt 1 failed: cannot write" in first.error
    assert first.available_at > first.updated_at  # waits before the next attempt
    h.watch.output.unlink()  # the studio fixes the problem; the retry succeeds
    done = _wait_until_done(h, job.id)
    assert done.status == JobStatus.DONE and done.attempts == 2


def _wait_until_done(h: Harness, job_id: int) -> Job:
    return wait_for(lambda: h.run_all() and h.repo.get(job_id), what="the retry")


def test_gives_up_after_max_attempts(make_harness: Callable[..., Harness],
                                     small_photo: Path) -> None:
    h = make_harness()
    h.watch.output.parent.mkdir(parents=True, exist_ok=True)
    h.watch.output.write_bytes(b"not a folder")
    job = h.drop("a.jpg", small_photo.read_bytes())
    final = wait_for(lambda: (h.run_all(), h.repo.get(job.id))[1].status == JobStatus.FAILED
                     and h.repo.get(job.id), timeout=30, what="three attempts")
    assert final.attempts == 3 and "gave up after 3 attempts" in final.error
    assert (h.watch.input / "a.jpg").exists()


def test_missing_model_is_retried_not_lost(make_settings: Callable[..., Settings],
                                           repo: JobRepository, tmp_path: Path,
                                           small_photo: Path) -> None:
    # u2netp ships with mattectl; a folder on u2net needs it pulled first.
    settings = make_settings(watch={"name": "studio", "model": "u2net"},
                             models={"dir": str(tmp_path / "none")})
    h = Harness(settings, repo)
    h.drop("a.jpg", small_photo.read_bytes())
    [job] = h.run_all()
    assert job.status == JobStatus.QUEUED
    assert "`mattectl models pull u2net`" in job.error


def test_a_symlinked_output_folder_cannot_lead_outside(make_harness: Callable[..., Harness],
                                                       small_photo: Path,
                                                       tmp_path: Path) -> None:
    h = make_harness()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    h.watch.output.mkdir(parents=True, exist_ok=True)
    (h.watch.output / "client").symlink_to(elsewhere)
    h.drop("client/a.jpg", small_photo.read_bytes())
    [job] = h.run_all()
    assert job.status == JobStatus.FAILED and "leads outside" in job.error
    assert list(elsewhere.iterdir()) == []


def test_a_locked_job_log_is_waited_out_and_the_result_kept(
        make_settings: Callable[..., Settings], tmp_path: Path, small_photo: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_MS", 50)
    caplog.set_level(logging.WARNING, logger="mattectl.jobs.worker")
    db = tmp_path / "locked.sqlite3"
    repo = JobRepository.open(db)
    holder = sqlite3.connect(db, timeout=0, check_same_thread=False)
    try:
        h = Harness(make_settings(watch={"name": "studio"}), repo)
        h.drop("a.jpg", small_photo.read_bytes())
        claimed = repo.claim(h.worker.worker_id, ["studio"])
        assert claimed is not None
        holder.execute("BEGIN IMMEDIATE")  # held while the worker records its output

        def release() -> None:
            wait_for(lambda: "job log busy (database is locked)" in caplog.text,
                     what="the worker to meet the lock")
            holder.rollback()

        releaser = threading.Thread(target=release, name="test-release")
        releaser.start()
        try:
            done = h.worker.process(claimed)
        finally:
            releaser.join()
        assert done.status == JobStatus.DONE and done.output_path.exists()
    finally:
        holder.close()
        repo.close()


def run_all_unless_blocked(h: Harness, fifo: Path, timeout: float = 60.0) -> list[Job]:
    """``h.run_all()`` on its own thread; a worker blocked on ``fifo`` fails the test (and is
    released by opening the FIFO's other end, so that no thread is left behind)."""
    done: list[Job] = []
    runner = threading.Thread(target=lambda: done.extend(h.run_all()), name="test-runner")
    runner.start()
    runner.join(timeout)
    if runner.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the writer it waits for
        runner.join()
        pytest.fail(f"the worker blocked reading {fifo}")
    return done


def test_a_fifo_swapped_in_after_queueing_fails_at_once_and_the_next_photo_is_done(
        make_harness: Callable[..., Harness], human_photos: list[Path]) -> None:
    h = make_harness()
    stuck = h.drop("a.jpg", human_photos[0].read_bytes())
    fine = h.drop("b.jpg", human_photos[1].read_bytes())
    (h.watch.input / "a.jpg").unlink()
    os.mkfifo(h.watch.input / "a.jpg")
    jobs = {j.id: j for j in run_all_unless_blocked(h, h.watch.input / "a.jpg")}
    assert jobs[stuck.id].status == JobStatus.FAILED and jobs[stuck.id].attempts == 1
    assert jobs[stuck.id].error == (
        f"a.jpg: {h.watch.input / 'a.jpg'} is not a regular file (a FIFO); it was not read")
    assert jobs[fine.id].status == JobStatus.DONE


def test_a_link_swapped_in_after_queueing_is_not_followed(
        make_harness: Callable[..., Harness], small_photo: Path, tmp_path: Path) -> None:
    h = make_harness()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(small_photo.read_bytes())  # even the very same content
    h.drop("a.jpg", small_photo.read_bytes())
    (h.watch.input / "a.jpg").unlink()
    (h.watch.input / "a.jpg").symlink_to(outside)
    [job] = h.run_all()
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "is a symbolic link (not followed); it was not read" in job.error
    assert not [p for p in h.outputs() if p.suffix == ".png" or is_temp(p)]


@pytest.mark.parametrize("stem", ["x" * 246, "漢" * 77], ids=["250-bytes", "77-cjk"])
def test_a_legal_name_near_the_limit_gets_its_cutout(make_harness: Callable[..., Harness],
                                                     small_photo: Path, stem: str) -> None:
    h = make_harness()
    h.drop(f"{stem}.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    assert done.status == JobStatus.DONE, done.error
    assert done.output_path == h.watch.output / f"{stem}.png"
    assert len(os.fsencode(done.output_path.name)) >= 235
    assert done.output_path in h.outputs()
    assert not [p for p in h.outputs() if is_temp(p)]


def test_an_output_name_too_long_fails_once_without_a_retry(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness(output_template="{stem}-{model}-{folder}.png")
    h.drop(f"{'x' * 240}.jpg", small_photo.read_bytes())  # a legal input name
    [job] = h.run_all()
    assert job.status == JobStatus.FAILED and job.attempts == 1, job.error
    assert "file name too long (258 bytes)" in job.error
    assert not [p for p in h.outputs() if p.suffix == ".png" or is_temp(p)]


@pytest.mark.parametrize("ending", ["failed", "processed"])
def test_a_link_planted_in_the_failed_or_processed_folder_does_not_redirect_the_original(
        make_harness: Callable[..., Harness], small_photo: Path, tmp_path: Path,
        ending: str) -> None:
    h = make_harness(on_success="move", processed_dir="processed", on_failure="move",
                     failed_dir="failed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ending).mkdir()
    (tmp_path / ending / "day").symlink_to(elsewhere)
    data = small_photo.read_bytes() if ending == "processed" else b"not a photo"
    h.drop("day/a.jpg", data)
    [job] = h.run_all()
    assert job.status == (JobStatus.DONE if ending == "processed" else JobStatus.FAILED)
    assert list(elsewhere.iterdir()) == []
    row = h.repo.get(job.id)
    assert row.input_path == h.watch.input / "day" / "a.jpg"
    assert (h.watch.input / "day" / "a.jpg").read_bytes() == data  # stays where it was
    assert f"{tmp_path / ending / 'day'} is a symbolic link" in row.error
    assert "it stays where it is" in row.error


@pytest.mark.slow
def test_the_daemon_fails_queued_fifos_and_keeps_processing(
        make_settings: Callable[..., Settings], human_photos: list[Path]) -> None:
    """Two jobs queued by an earlier run whose photos became FIFOs (one per worker): the daemon
    used to hang both workers on them, at every start."""
    settings = make_settings(watch={"name": "studio"})
    watch = settings.watch[0]
    earlier = JobRepository.open(settings.database_path)
    try:
        stuck = [earlier.add(NewJob("studio", watch.input / name, name, hashlib.sha256(
            name.encode()).hexdigest(), 10, 0))[0] for name in ("a.jpg", "b.jpg")]
    finally:
        earlier.close()
    for job in stuck:
        os.mkfifo(job.input_path)
    daemon = Daemon(settings)
    daemon.start()
    try:
        shutil.copyfile(human_photos[0], watch.input / "c.jpg")
        repo = daemon.repo
        assert repo is not None
        done = wait_for(lambda: [j for j in repo.list() if j.rel_path == "c.jpg"
                                 and j.status == JobStatus.DONE], timeout=120,
                        what="the next photo to be processed")
        assert done[0].output_path is not None and done[0].output_path.exists()
        for job in stuck:
            row = repo.get(job.id)
            assert row.status == JobStatus.FAILED and row.attempts == 1
            assert "is not a regular file (a FIFO)" in row.error
    finally:
        for job in stuck:  # release a worker blocked in open(), so that stop() can end
            with contextlib.suppress(OSError):
                os.close(os.open(job.input_path, os.O_WRONLY | os.O_NONBLOCK))
        daemon.stop()


def test_a_retry_never_overwrites_a_cutout_another_job_put_under_its_name(
        make_harness: Callable[..., Harness], human_photos: list[Path]) -> None:
    first, second = sorted(human_photos, key=lambda p: p.stat().st_size)[:2]
    h = make_harness()
    a = h.drop("a.jpg", first.read_bytes())
    [done_a] = h.run_all()
    assert done_a.output_path == h.watch.output / "a.png"
    assert done_a.output_hash == hashlib.sha256(done_a.output_path.read_bytes()).hexdigest()
    # A later photo with the same stem, in a folder that overwrites (or a person replacing the
    # file): a.png is now B's cutout.
    overwriting = make_harness(on_collision="overwrite")
    overwriting.drop("a.jpeg", second.read_bytes())
    [done_b] = overwriting.run_all()
    assert done_b.output_path == h.watch.output / "a.png"
    b_cutout = done_b.output_path.read_bytes()
    h.repo.retry(a.id)  # `mattectl jobs retry` on A
    [again] = h.run_all()
    assert again.id == a.id and again.status == JobStatus.DONE
    assert (h.watch.output / "a.png").read_bytes() == b_cutout  # B's file untouched
    assert again.output_path == h.watch.output / "a-1.png"
    assert again.output_hash == hashlib.sha256(again.output_path.read_bytes()).hexdigest()
    # Its own file, still as it wrote it, is rewritten in place by the next retry.
    h.repo.retry(a.id)
    [third] = h.run_all()
    assert third.output_path == h.watch.output / "a-1.png"
    assert sorted(p.name for p in h.outputs()) == ["a-1.png", "a.png"]


def test_a_done_job_notes_its_cutout_in_the_output_folders_manifest(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness()
    job = h.drop("shoot/a.jpg", small_photo.read_bytes())
    [done] = h.run_all()
    assert DeliveryManifest(h.watch.output).lookup("studio", job.input_hash) == \
        h.watch.output / "shoot" / "a.png" == done.output_path
    assert h.repo.delivered("studio", job.input_hash).output_path == done.output_path
    assert (h.watch.output / MANIFEST_NAME).stat().st_size > 0  # hidden, in the output folder


def test_a_drop_folder_that_goes_away_pauses_the_folder_instead_of_failing_its_jobs(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness()
    book = FolderPauses()
    h.worker = JobWorker("host:1:w0", h.repo, h.worker.pipeline, h.settings,
                         folders=lambda: [] if "studio" in book else ["studio"],
                         wake=threading.Event(), paused=book)
    jobs = [h.drop(f"{i}.jpg", small_photo.read_bytes() + bytes([i])) for i in range(3)]
    away = h.watch.input.with_name("unmounted")
    h.watch.input.rename(away)  # the share drops off the network
    [held] = h.run_all()  # the first job meets it; the paused folder gives no other
    why = f"drop folder {h.watch.input} is missing (No such file or directory)"
    assert held.status == JobStatus.QUEUED and held.attempts == 0, held.error
    assert held.error == f"held while folder studio is paused: {why}"
    assert book.reasons() == {"studio": why}
    assert all(j.status == JobStatus.QUEUED for j in h.repo.list())
    assert book.recheck() == []  # still away
    away.rename(h.watch.input)
    assert book.recheck() == ["studio"]
    done = h.run_all()
    assert sorted(j.id for j in done) == [j.id for j in jobs]
    assert all(j.status == JobStatus.DONE and j.attempts == 1 for j in done)
    # A bad photo is that photo's problem: it fails, the folder goes on.
    h.drop("notes.jpg", b"not a photo")
    [failed] = h.run_all()
    assert failed.status == JobStatus.FAILED and "studio" not in book


@pytest.mark.slow  # the real u2netp
def test_a_done_job_gets_its_thumbnail_from_the_cutout_in_memory(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    from mattectl.thumbnails import ThumbnailStore

    h = make_harness()
    store = ThumbnailStore(h.settings.web_dir / "thumbnails")
    h.worker = JobWorker("host:1:w1", h.repo, h.worker.pipeline, h.settings,
                         folders=lambda: [h.watch.name], wake=threading.Event(),
                         thumbnails=store)
    h.drop("portrait.jpg", small_photo.read_bytes())
    h.drop("broken.jpg", b"not a photo")
    done, failed = sorted(h.run_all(), key=lambda j: j.status != JobStatus.DONE)
    assert done.status == JobStatus.DONE and failed.status == JobStatus.FAILED
    thumb = store.path(done)
    assert thumb is not None and [p.name for p in store.folder.iterdir()] == [thumb.name]
    with Image.open(thumb) as picture, Image.open(done.output_path) as cutout:
        assert picture.format == "WEBP" and max(picture.size) == 256
        assert picture.size[0] / picture.size[1] == pytest.approx(
            cutout.size[0] / cutout.size[1], rel=0.02)
        alpha = np.asarray(picture.convert("RGBA"))[:, :, 3]
        assert alpha.min() < 10 and alpha.max() > 245  # the subject on transparency


def test_a_job_taken_by_another_workstation_before_it_finished_is_left_to_it(
        make_harness: Callable[..., Harness], small_photo: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    h = make_harness(on_success="move", processed_dir="processed")
    h.drop("a.jpg", small_photo.read_bytes())
    record_output = h.repo.record_output

    def then_lose_the_lease(*args, **kwargs) -> None:
        record_output(*args, **kwargs)
        with h.repo.engine.begin() as conn:  # this workstation went silent past its lease
            conn.execute(text("UPDATE jobs SET lease_until = :t"),
                         {"t": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None)})
        assert h.repo.expire_leases(max_attempts=3)[0]
        assert h.repo.claim("other-pc:1:w0", ["studio"]) is not None

    h.repo.record_output = then_lose_the_lease  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="mattectl.jobs.worker")
    job, = h.run_all()
    assert (job.status, job.claimed_by) == (JobStatus.RUNNING, "other-pc:1:w0")
    assert "was taken from this worker before it finished" in caplog.text
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
    assert (h.watch.input / "a.jpg").exists()  # the original is the new worker's to move


def test_a_job_queued_by_a_workstation_that_mounts_the_share_elsewhere_is_done_here(
        make_harness: Callable[..., Harness], small_photo: Path) -> None:
    h = make_harness(on_success="move", processed_dir="processed")
    data = small_photo.read_bytes()
    (h.watch.input / "shoot").mkdir()
    (h.watch.input / "shoot" / "a.jpg").write_bytes(data)
    # queued by a Mac that mounts the NAS at /Volumes/studio: the same folder, by its name
    h.repo.add(NewJob("studio", Path("/Volumes/studio/in/shoot/a.jpg"), "shoot/a.jpg",
                      hashlib.sha256(data).hexdigest(), len(data), 1))
    job, = h.run_all()
    assert job.status == JobStatus.DONE, job.error
    assert len(h.outputs()) == 1
    moved = h.settings.watch[0].processed_dir / "shoot" / "a.jpg"
    assert moved.exists() and not (h.watch.input / "shoot" / "a.jpg").exists()
    assert h.repo.get(job.id).input_path == moved
