"""The intake with a real watchdog observer, a real filesystem and a real SQLite job log."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from mattectl.config import Settings, WatchConfig
from mattectl.housekeeping import prune_jobs
from mattectl.store.manifest import DeliveryManifest
from mattectl.store.repository import Job, JobRepository, JobResult
from mattectl.store.status import JobStatus
from mattectl.watch.handler import start_observers, stop_observers
from mattectl.watch.intake import Intake, hash_file

from .support import wait_for


class Running:
    def __init__(self, settings: Settings, repo: JobRepository) -> None:
        self.settings = settings
        self.repo = repo
        self.queued: list[Job] = []
        self.intake = Intake(settings.watch, repo, self.queued.append)
        self.observers = []

    @property
    def inbox(self) -> Path:
        return self.settings.watch[0].input

    def jobs(self) -> list[Job]:
        return self.repo.list(limit=1000)


@pytest.fixture
def running(make_settings: Callable[..., Settings], repo: JobRepository,
            request: pytest.FixtureRequest) -> Iterator[Running]:
    overrides = getattr(request, "param", {})
    settings = make_settings(watch={"stability_s": 0.6, **overrides})
    env = Running(settings, repo)
    env.intake.start()
    env.observers = start_observers(settings.watch, env.intake.notify)
    yield env
    stop_observers(env.observers)
    env.intake.stop()


def test_slow_copy_gives_one_job_after_the_last_byte(running: Running,
                                                     small_photo: Path) -> None:
    data = small_photo.read_bytes()
    target = running.inbox / "slow.jpg"
    chunks = [data[i:i + len(data) // 6 + 1] for i in range(0, len(data), len(data) // 6 + 1)]
    with target.open("wb") as fh:
        for chunk in chunks:  # a copy that pauses for less than the quiet time between chunks
            fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(0.25)
            assert running.jobs() == [], "queued before the copy finished"
    [job] = wait_for(running.jobs, what="the job")
    assert job.input_hash == hashlib.sha256(data).hexdigest()
    assert job.input_size == len(data)
    assert job.rel_path == "slow.jpg"


def test_rename_into_place_is_picked_up(running: Running, small_photo: Path) -> None:
    temp = running.inbox / "upload.jpg.part"
    shutil.copyfile(small_photo, temp)
    hidden = running.inbox / ".upload.jpg.Xy12Ab"  # rsync's temporary name
    shutil.copyfile(small_photo, hidden)
    os.rename(temp, running.inbox / "upload.jpg")
    [job] = wait_for(running.jobs, what="the renamed file")
    assert job.rel_path == "upload.jpg"
    os.unlink(hidden)


def test_file_moved_in_from_outside_is_picked_up(running: Running, small_photo: Path,
                                                 tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jpg"
    shutil.copyfile(small_photo, outside)
    os.rename(outside, running.inbox / "moved.jpg")
    [job] = wait_for(running.jobs, what="the moved-in file")
    assert job.rel_path == "moved.jpg"


def test_burst_of_events_gives_one_job(running: Running, small_photo: Path) -> None:
    target = running.inbox / "burst.jpg"
    shutil.copyfile(small_photo, target)
    for _ in range(50):
        os.utime(target)  # touch: modified events, same content
        running.intake.notify("w0", target)
    running.intake.request_scan()
    wait_for(running.jobs, what="the job")
    wait_for(lambda: running.intake.pending == 0, what="the intake to settle")
    assert len(running.jobs()) == 1


def test_same_photo_under_two_names_is_one_job(running: Running, small_photo: Path) -> None:
    shutil.copyfile(small_photo, running.inbox / "a.jpg")
    shutil.copyfile(small_photo, running.inbox / "copy of a.jpg")
    wait_for(running.jobs, what="the job")
    wait_for(lambda: running.intake.pending == 0, what="the intake to settle")
    assert len(running.jobs()) == 1


def test_sub_folders_and_ignored_names(running: Running, small_photo: Path) -> None:
    sub = running.inbox / "client" / "day1"
    sub.mkdir(parents=True)
    shutil.copyfile(small_photo, sub / "p.JPG")
    for name in ("._p.jpg", ".DS_Store", "Thumbs.db", "p.jpg.crdownload", "p.tmp", "notes.txt"):
        (running.inbox / name).write_bytes(b"x" * 10)
    [job] = wait_for(running.jobs, what="the job in the sub-folder")
    assert job.rel_path == "client/day1/p.JPG"
    wait_for(lambda: running.intake.pending == 0, what="the intake to settle")
    assert len(running.jobs()) == 1


@pytest.mark.parametrize("running", [{"recursive": False}], indirect=True)
def test_non_recursive_folder_ignores_sub_folders(running: Running, small_photo: Path) -> None:
    (running.inbox / "sub").mkdir()
    shutil.copyfile(small_photo, running.inbox / "sub" / "deep.jpg")
    (running.inbox / "top.jpg").write_bytes(small_photo.read_bytes()[::-1])
    [job] = wait_for(running.jobs, what="the top-level file")
    assert job.rel_path == "top.jpg"
    running.intake.request_scan()
    wait_for(lambda: running.intake.pending == 0, what="the intake to settle")
    assert len(running.jobs()) == 1


def test_startup_scan_finds_files_dropped_while_down(make_settings: Callable[..., Settings],
                                                     repo: JobRepository,
                                                     small_photo: Path) -> None:
    settings = make_settings(watch={"stability_s": 0.5})
    inbox = settings.watch[0].input
    shutil.copyfile(small_photo, inbox / "while-down.jpg")
    intake = Intake(settings.watch, repo, lambda job: None)
    intake.request_scan()
    intake.tick()
    assert intake.pending == 1
    wait_for(lambda: intake.tick() or repo.list(), what="the scanned file")
    # A second scan (the periodic rescan) neither hashes nor queues it again.
    intake.request_scan()
    for _ in range(3):
        intake.tick()
    assert intake.pending == 0
    assert len(repo.list()) == 1


def test_a_flood_of_events_beyond_the_inbox_limit_becomes_a_scan(
        make_settings: Callable[..., Settings], repo: JobRepository, small_photo: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mattectl.watch.intake.INBOX_LIMIT", 5)
    settings = make_settings()
    inbox = settings.watch[0].input
    now = [0.0]
    intake = Intake(settings.watch, repo, lambda job: None, clock=lambda: now[0])
    data = small_photo.read_bytes()
    for i in range(12):
        (inbox / f"{i}.jpg").write_bytes(data + bytes([i]))
        intake.notify("w0", inbox / f"{i}.jpg")
    assert intake._inbox.qsize() == 5  # bounded; the rest is left to the scan it asked for
    intake.tick()
    now[0] += settings.watch[0].stability_s
    intake.tick()
    assert len(repo.list(limit=100)) == 12


@pytest.mark.parametrize("running", [{"polling": True, "poll_interval_s": 0.2}], indirect=True)
def test_polling_observer_for_network_mounts(running: Running, small_photo: Path) -> None:
    shutil.copyfile(small_photo, running.inbox / "nas.jpg")
    [job] = wait_for(running.jobs, what="the polled file")
    assert job.rel_path == "nas.jpg"


def test_symlink_pointing_outside_is_not_followed(running: Running, small_photo: Path,
                                                  tmp_path: Path) -> None:
    secret = tmp_path / "outside.jpg"
    secret.write_bytes(small_photo.read_bytes() + b"different content")
    (running.inbox / "link.jpg").symlink_to(secret)
    shutil.copyfile(small_photo, running.inbox / "real.jpg")
    [job] = wait_for(running.jobs, what="the real file")
    assert job.rel_path == "real.jpg"
    running.intake.request_scan()
    wait_for(lambda: running.intake.pending == 0, what="the intake to settle")
    assert [j.rel_path for j in running.jobs()] == ["real.jpg"]


# -- photos already delivered (issue 13): job rows pruned, the job log lost ---------------------

class Restart:
    """An intake as a (re)started daemon has it: a start-up scan, on a clock the test moves."""

    def __init__(self, settings: Settings, repo: JobRepository) -> None:
        self.now = 0.0
        self.intake = Intake(settings.watch, repo, lambda job: None, clock=lambda: self.now)
        self.quiet = settings.watch[0].stability_s

    def scan(self) -> list[Job]:
        self.intake.request_scan()
        self.intake.tick()
        self.now += self.quiet
        queued = self.intake.tick()
        assert self.intake.pending == 0
        return queued


def deliver(repo: JobRepository, watch: WatchConfig, job: Job, name: str) -> Path:
    """What a worker does when a job is done: the cutout, the manifest line, the finished row."""
    cutout = watch.output / name
    cutout.parent.mkdir(parents=True, exist_ok=True)
    cutout.write_bytes(b"a cutout of " + job.rel_path.encode())
    DeliveryManifest(watch.output).append(watch.name, job.input_hash, cutout)
    assert repo.claim("w", [watch.name]).id == job.id
    repo.finish(job.id, "w", JobResult(output_path=cutout, output_hash="0" * 64))
    return cutout


def age_and_prune(repo: JobRepository) -> None:
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET finished_at = '2000-01-01 00:00:00'"))
    assert prune_jobs(repo, retention_days=90) == 1 and repo.list() == []


def test_a_delivered_photo_is_not_queued_again_once_its_job_row_is_pruned(
        make_settings: Callable[..., Settings], repo: JobRepository, small_photo: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mattectl.watch.intake")
    settings = make_settings()
    watch = settings.watch[0]
    photo = watch.input / "a.jpg"
    shutil.copyfile(small_photo, photo)
    [job] = Restart(settings, repo).scan()
    cutout = deliver(repo, watch, job, "a.png")
    age_and_prune(repo)  # daemon.retention_days later; on_success = "keep" left the original
    assert Restart(settings, repo).scan() == []  # a restart (and its rescans) queue nothing
    assert repo.list() == []
    assert f"skipped a.jpg (w0): already delivered as {cutout}" in caplog.text
    # The same photo dropped under another name, before any hashing shortcut knew it: skipped.
    shutil.copyfile(small_photo, watch.input / "copy of a.jpg")
    assert Restart(settings, repo).scan() == []
    # A changed photo under the same name is new content: processed.
    photo.write_bytes(small_photo.read_bytes() + b"retouched")
    [changed] = Restart(settings, repo).scan()
    assert changed.rel_path == "a.jpg" and changed.input_hash != job.input_hash


def test_a_delivered_photo_whose_cutout_was_deleted_is_processed_again(
        make_settings: Callable[..., Settings], repo: JobRepository, small_photo: Path) -> None:
    settings = make_settings()
    watch = settings.watch[0]
    shutil.copyfile(small_photo, watch.input / "a.jpg")
    [job] = Restart(settings, repo).scan()
    cutout = deliver(repo, watch, job, "a.png")
    age_and_prune(repo)
    cutout.unlink()  # the studio deleted it: it wants it made again
    [again] = Restart(settings, repo).scan()
    assert again.input_hash == job.input_hash and again.status == JobStatus.QUEUED
    assert repo.list() == [again]


def test_after_the_job_log_is_lost_the_output_folders_manifest_remembers(
        make_settings: Callable[..., Settings], tmp_path: Path, small_photo: Path) -> None:
    settings = make_settings()
    watch = settings.watch[0]
    shutil.copyfile(small_photo, watch.input / "a.jpg")
    old_log = JobRepository.open(tmp_path / "old.sqlite3")
    try:
        [job] = Restart(settings, old_log).scan()
        cutout = deliver(old_log, watch, job, "a.png")
    finally:
        old_log.close()
    fresh = JobRepository.open(tmp_path / "fresh.sqlite3")  # the log is gone: a new, empty one
    try:
        assert Restart(settings, fresh).scan() == []
        assert fresh.list() == []
        learned = fresh.delivered(watch.name, job.input_hash)  # written back to the new log
        assert learned is not None and learned.output_path == cutout
        assert learned.input_path == watch.input / "a.jpg"
    finally:
        fresh.close()


def test_hashing_neither_blocks_on_a_fifo_nor_follows_a_link(tmp_path: Path) -> None:
    """A photo found stable, then swapped for a FIFO or a link before the intake hashes it."""
    fifo, link, outside = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "outside.jpg"
    os.mkfifo(fifo)
    outside.write_bytes(b"someone else's photo")
    link.symlink_to(outside)
    errors: list[OSError] = []

    def hash_both() -> None:
        for path in (fifo, link):
            try:
                hash_file(path)
            except OSError as exc:
                errors.append(exc)

    hasher = threading.Thread(target=hash_both, name="test-hasher")
    hasher.start()
    hasher.join(10)
    if hasher.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the writer it waits for
        hasher.join()
        pytest.fail("hashing blocked on a FIFO")
    assert [e.strerror for e in errors] == [f"{fifo} is not a regular file (a FIFO)",
                                            f"{link} is a symbolic link (not followed)"]


# -- taken when the writer is done: close-after-write or a rename, and a whole image ---------

@pytest.mark.parametrize("running", [{"stability_s": 30.0}], indirect=True)
def test_a_photo_closed_whole_is_taken_without_the_quiet_period(running: Running,
                                                                small_photo: Path,
                                                                tmp_path: Path) -> None:
    start = time.monotonic()
    shutil.copyfile(small_photo, running.inbox / "copied.jpg")
    [job] = wait_for(running.jobs, timeout=10, what="the copied photo's job")
    assert time.monotonic() - start < 10 < 30
    assert job.input_hash == hashlib.sha256(small_photo.read_bytes()).hexdigest()
    # "Save as temp, then rename": the rename says the writer is done.
    Image.open(small_photo).convert("RGB").save(tmp_path / "saved.png")
    shutil.copyfile(tmp_path / "saved.png", running.inbox / ".saved.png.tmp")
    os.rename(running.inbox / ".saved.png.tmp", running.inbox / "saved.png")
    wait_for(lambda: len(running.jobs()) == 2, timeout=10, what="the renamed photo's job")


@pytest.mark.parametrize("running", [{"stability_s": 2.0}], indirect=True)
def test_a_photo_closed_half_written_waits_for_the_rest(running: Running,
                                                        small_photo: Path) -> None:
    """A writer that closes the file between two halves (and a photo cut short) is not read:
    only the close after the last byte, with the image whole, releases it at once."""
    data = small_photo.read_bytes()
    target = running.inbox / "two-sessions.jpg"
    target.write_bytes(data[:len(data) // 2])  # closed after writing, but not a whole JPEG
    time.sleep(1.2)
    assert running.jobs() == [], "a half-written photo was taken"
    with target.open("ab") as fh:
        fh.write(data[len(data) // 2:])
    [job] = wait_for(running.jobs, timeout=1.5, what="the job once the photo is whole")
    assert job.input_hash == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("running", [{"stability_s": 2.0}], indirect=True)
def test_a_tiff_waits_the_quiet_period(running: Running, small_photo: Path,
                                       tmp_path: Path) -> None:
    Image.open(small_photo).convert("RGB").save(tmp_path / "scan.tif")
    start = time.monotonic()
    shutil.copyfile(tmp_path / "scan.tif", running.inbox / "scan.tif")
    wait_for(running.jobs, timeout=10, what="the TIFF's job")
    assert time.monotonic() - start >= 2.0, "a TIFF (whose end cannot be proven) was taken early"


@pytest.mark.parametrize("running", [{"stability_s": 2.0, "release_on_close": False}],
                         indirect=True)
def test_release_on_close_off_waits_the_quiet_period(running: Running,
                                                     small_photo: Path) -> None:
    start = time.monotonic()
    shutil.copyfile(small_photo, running.inbox / "copied.jpg")
    wait_for(running.jobs, timeout=10, what="the job")
    assert time.monotonic() - start >= 2.0
