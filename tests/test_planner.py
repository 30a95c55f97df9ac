"""The rules engine inside the worker and the daemon: real photos, real u2netp, real SQLite.

The weights in ../shared hold u2netp only, so the shipped presets' u2net and bshm choices are
unavailable here: exactly the fallback a studio without those models gets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mattectl.app import Daemon
from mattectl.backends.cache import ModelCache
from mattectl.config import Settings
from mattectl.imageio.options import OutputFormat
from mattectl.jobs.worker import JobWorker
from mattectl.matting.pipeline import PhotoPipeline
from mattectl.matting.planner import FolderRules, RulePlanner
from mattectl.rules.facts import Box
from mattectl.rules.report import describe
from mattectl.store.repository import Job, JobRepository, NewJob
from mattectl.store.status import JobStatus

from .support import wait_for

PORTRAIT = "photo-1552374196-c4e7ffc6e126.jpeg"


def queue(repo: JobRepository, settings: Settings, photo: Path, name: str | None = None,
          folder: int = 0) -> Job:
    """Copy a real photo into a folder's drop folder and queue it as the intake would."""
    watch = settings.watch[folder]
    target = watch.input / (name or photo.name)
    shutil.copyfile(photo, target)
    data = target.read_bytes()
    stat = target.stat()
    job, _ = repo.add(NewJob(watch.name, target, target.name, hashlib.sha256(data).hexdigest(),
                             stat.st_size, stat.st_mtime_ns))
    return job


@pytest.fixture
def make_worker(repo: JobRepository) -> Iterator[Callable[[Settings], JobWorker]]:
    caches: list[ModelCache] = []

    def build(settings: Settings) -> JobWorker:
        models = ModelCache(settings.models, settings.models_dir)
        caches.append(models)
        planner = RulePlanner.create(models, settings.daemon.rules_dir, repo.recent_inference)
        pipeline = PhotoPipeline(models, max_pixels=settings.daemon.max_pixels,
                                 planner=planner)
        return JobWorker("test:w0", repo, pipeline, settings,
                         folders=lambda: [w.name for w in settings.watch],
                         wake=threading.Event())

    yield build
    for cache in caches:
        cache.unload_all()


def photo(human_photos: list[Path], name: str) -> Path:
    return next(p for p in human_photos if p.name == name)


def run_done(worker: JobWorker) -> Job:
    """Process the queued job; it must succeed."""
    job = worker.run_once()
    assert job is not None
    assert job.status == JobStatus.DONE, job.error
    return job


def test_a_rules_folder_records_the_decision_on_the_job(
        make_settings, make_worker, repo, human_photos) -> None:
    settings = make_settings(watch={"rules": "live"})
    queue(repo, settings, photo(human_photos, PORTRAIT))
    job = run_done(make_worker(settings))
    decision = job.decision
    assert decision is not None
    assert (decision["preset"], decision["rule"], decision["model"]) == ("live", "fast", "u2netp")
    assert decision["probe"]["reused"] is True  # no second pass for a large subject
    assert decision["facts"]["subject"]["fraction"] >= 0.25
    assert decision["facts"]["file"] == PORTRAIT
    assert job.model == "u2netp"
    assert job.inference_ms
    assert job.inference_ms > 0
    assert job.confidence is not None and 0 < job.confidence <= 1
    with Image.open(job.output_path) as cutout:
        assert cutout.mode == "RGBA"
        assert cutout.size == (job.width, job.height)


def test_missing_models_fall_back_with_the_reason_recorded(
        make_settings, make_worker, repo, human_photos) -> None:
    settings = make_settings(watch={"rules": "default"})
    queue(repo, settings, photo(human_photos, PORTRAIT))
    job = run_done(make_worker(settings))
    decision = job.decision
    assert (decision["rule"], decision["model"], decision["fallback"]) == (
        "portrait", "u2netp", True)
    notes = " | ".join(decision["notes"])
    assert "bshm unavailable: model 'bshm' is not known" in notes or \
        "bshm unavailable: model 'bshm' is not installed" in notes
    assert "u2net unavailable: model 'u2net' is not installed" in notes


def test_a_model_that_fails_to_load_is_dropped_and_the_decision_taken_again(
        tmp_path, make_settings, make_worker, repo, human_photos) -> None:
    corrupt = tmp_path / "u2net.pth"
    corrupt.write_bytes(b"not a checkpoint")
    settings = make_settings(watch={"rules": "default"}, models={"paths": {"u2net": str(corrupt)}})
    queue(repo, settings, photo(human_photos, PORTRAIT))
    job = run_done(make_worker(settings))
    assert job.decision["model"] == "u2netp"
    u2net = job.decision["facts"]["models"]["u2net"]
    assert u2net["available"] is False
    assert "cannot read weights" in u2net["reason"]


def test_a_required_rule_fails_the_job_instead_of_falling_back(
        tmp_path, make_settings, make_worker, repo, human_photos) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bshm-only.toml").write_text(
        '[[rules]]\nname = "bshm"\nmodel = "bshm"\nrequired = true\n')
    settings = make_settings(watch={"rules": "bshm-only"}, daemon={"max_attempts": 1})
    queue(repo, settings, photo(human_photos, PORTRAIT))
    job = make_worker(settings).run_once()
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert "rule 'bshm' is required" in job.error
    assert job.decision["blocked"]
    assert job.decision["model"] is None
    output = settings.watch[0].output
    assert not output.exists() or not list(output.iterdir())  # no output at all
    assert (settings.watch[0].input / PORTRAIT).is_file()  # the original stays


def test_an_edited_preset_applies_to_the_next_photo(
        tmp_path, make_settings, make_worker, repo, human_photos) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    preset = rules / "mine.toml"
    preset.write_text('[[rules]]\nname = "one"\nmodel = "u2netp"\n')
    settings = make_settings(watch={"rules": "mine"})
    worker = make_worker(settings)
    queue(repo, settings, photo(human_photos, PORTRAIT))
    assert run_done(worker).decision["rule"] == "one"
    preset.write_text('[[rules]]\nname = "two"\nmodel = "u2netp"\ncrop_to_subject = true\n')
    queue(repo, settings, photo(human_photos, "Two_dancers.jpg"))
    second = run_done(worker)
    assert second.decision["rule"] == "two"


def test_a_small_subject_is_matted_on_a_crop(
        tmp_path, make_settings, make_worker, repo, human_photos) -> None:
    # A real photo pasted small into a wide frame of plain backdrop.
    rgb = np.asarray(Image.open(photo(human_photos, "Two_dancers.jpg")).convert("RGB"))
    h, w = rgb.shape[:2]
    canvas = np.full((3 * h, 3 * w, 3), 200, np.uint8)
    canvas[h:2 * h, w:2 * w] = rgb
    wide = tmp_path / "wide.png"
    Image.fromarray(canvas).save(wide)
    settings = make_settings(watch={"rules": "live"})
    queue(repo, settings, wide)
    job = run_done(make_worker(settings))
    assert job.decision["rule"] == "small-subject"
    x0, y0, x1, y1 = job.decision["crop"]
    assert x0 <= w
    assert y0 <= h
    assert x1 >= 2 * w - 1
    assert y1 >= 2 * h - 1
    alpha = np.asarray(Image.open(job.output_path))[:, :, 3]
    outside = alpha.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0
    assert alpha[y0:y1, x0:x1].max() == 255


def test_the_daemon_processes_a_rules_folder(make_settings, human_photos) -> None:
    settings = make_settings(watch={"rules": "default", "latency_budget_ms": 5000})
    daemon = Daemon(settings)
    daemon.start()
    try:
        assert daemon.paused == {}  # u2net and bshm are missing, but u2netp can run
        shutil.copyfile(photo(human_photos, PORTRAIT), settings.watch[0].input / PORTRAIT)
        assert daemon.repo is not None
        repo = daemon.repo
        job = wait_for(lambda: next((j for j in repo.list() if j.status == JobStatus.DONE),
                                    None), timeout=120, what="the job to finish")
        assert job.decision["preset"] == "default"
        assert job.model == "u2netp"
        assert job.decision["facts"]["latency_budget_ms"] == 5000
    finally:
        daemon.stop()


CATALOGUE = """
[[rules]]
name = "catalogue"
description = "Catalogue shots: JPEG on the brand colour"
when.folder = ["catalogue*"]
model = "u2netp"
[rules.output]
format = "jpeg"
background = "#2040c0"

[[rules]]
name = "rest"
model = "u2netp"
"""
BRAND = np.array([0x20, 0x40, 0xC0])


def test_a_rule_writes_its_own_format_and_background_over_the_folders(
        tmp_path, make_settings, make_worker, repo, small_photo) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "catalogue.toml").write_text(CATALOGUE)
    # Both folders write PNG and their template says so; in the catalogue folder the rule's
    # JPEG wins, and the file's extension follows the format actually written.
    settings = make_settings(watch=[
        {"name": name, "rules": "catalogue", "output_template": "{stem}-cut.png"}
        for name in ("catalogue", "studio")])
    assert all(w.output_options.format == OutputFormat.PNG for w in settings.watch)
    worker = make_worker(settings)
    name = f"look{small_photo.suffix}"
    queue(repo, settings, small_photo, name, folder=0)
    queue(repo, settings, small_photo, name, folder=1)
    jobs = {job.folder: job for job in (run_done(worker), run_done(worker))}
    jpeg_job, png_job = jobs["catalogue"], jobs["studio"]

    assert jpeg_job.decision["rule"] == "catalogue"
    assert jpeg_job.decision["output"] == {"format": "jpeg", "background": "#2040c0"}
    shown = dict(row for row in describe(jpeg_job.decision) if row[0])
    assert shown["output"].startswith("format jpeg, background #2040c0 (rule 'catalogue'")
    assert png_job.decision["rule"] == "rest"
    assert png_job.decision["output"] is None
    assert "output" not in dict(describe(png_job.decision))

    assert jpeg_job.output_path.name == "look-cut.jpg"
    assert png_job.output_path.name == "look-cut.png"  # no output table: the folder's format
    with Image.open(jpeg_job.output_path) as jpeg, Image.open(png_job.output_path) as png:
        assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "RGB", png.size)
        assert (png.format, png.mode) == ("PNG", "RGBA")
        flat = np.asarray(jpeg).astype(np.int16)
        cutout = np.asarray(png).astype(np.int16)
    # Same photo, same model: the PNG's alpha says where the JPEG must show the background.
    alpha = cutout[:, :, 3].astype(np.uint8)
    kernel = np.ones((9, 9), np.uint8)  # keep clear of edges and of JPEG's 8x8 ringing
    clear = cv2.dilate((alpha > 0).astype(np.uint8), kernel) == 0
    solid = cv2.erode((alpha >= 250).astype(np.uint8), kernel) == 1  # u2netp tops out at 254
    assert clear.mean() > 0.1, "the photo should have background to check"
    assert solid.mean() > 0.05, "the photo should have a subject to check"
    assert np.median(np.abs(flat[clear] - BRAND)) <= 2
    assert np.percentile(np.abs(flat[clear] - BRAND), 99) <= 10
    # Where the subject is opaque the JPEG shows the subject, not the brand colour.
    assert np.abs(flat[solid] - cutout[:, :, :3][solid]).mean() < 4
    assert np.abs(flat[solid] - BRAND).mean() > 40


def test_a_crop_that_saw_only_the_upper_body_still_keeps_the_whole_person(
        tmp_path, make_settings, human_photos) -> None:
    # Real dancers pasted small into a wide frame; the crop is cut to the top third of the
    # probe's box, as a probe that lost the legs against the background would have it.
    rgb = np.asarray(Image.open(photo(human_photos, "Two_dancers.jpg")).convert("RGB"))
    h, w = rgb.shape[:2]
    canvas = np.full((3 * h, 3 * w, 3), 200, np.uint8)
    canvas[h:2 * h, w:2 * w] = rgb
    settings = make_settings()
    models = ModelCache(settings.models, settings.models_dir)
    try:
        planner = RulePlanner.create(models, None)
        explained = planner.explain(canvas, FolderRules("default", "t"), "wide.png")
        box = explained.decision.crop
        assert box is not None
        top = Box(box.x0, box.y0, box.x1, box.y0 + box.height // 3)
        cut_short = dataclasses.replace(explained, decision=dataclasses.replace(
            explained.decision, crop=top))
        whole = planner.run(canvas, explained).alpha  # the crop around the whole person
        matte = planner.run(canvas, cut_short)
    finally:
        models.unload_all()
    below = (slice(top.y1 + 1, box.y1), slice(box.x0, box.x1))  # legs: outside the first crop
    legs = np.count_nonzero(whole[below] >= 0.5)
    assert legs > 1000
    assert np.count_nonzero(matte.alpha[below] >= 0.5) >= 0.8 * legs  # the old crop had none
    check = matte.decision["crop_check"]
    assert check["touched"][0]  # the first crop's alpha reached its border
    assert check["rounds"] >= 2 or check["whole_frame"]
    assert matte.decision["crop"] == top.as_list()  # the decision as taken, then the check


def test_a_low_confidence_photo_asks_the_rules_second_model(
        tmp_path, make_settings, human_photos) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "careful.toml").write_text(
        '[[rules]]\nname = "any"\nmodel = "u2netp"\n'
        'second_opinion = { below = 1.0, model = "u2net" }\n')  # every photo is below 1.0
    settings = make_settings()
    models = ModelCache(settings.models, settings.models_dir)
    rgb = np.asarray(Image.open(photo(human_photos, PORTRAIT)).convert("RGB"))
    try:
        planner = RulePlanner.create(models, rules)
        matte = planner.matte(rgb, FolderRules("careful", "t"), PORTRAIT)
    finally:
        models.unload_all()
    second = matte.decision["second_opinion"]
    # u2net is not installed here: the first alpha stays, and the job says why.
    assert (second["model"], second["kept"], second["first"]) == ("u2net", "first",
                                                                   matte.confidence)
    assert "u2net" in second["note"]
    assert matte.model == "u2netp"
    assert any(label == "second opinion" and "kept the first alpha" in text
               for label, text in describe(matte.decision))
