"""The intake with a real watchdog observer, a real filesystem and a real SQLite job log."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mattectl.config import Settings
from mattectl.store.repository import Job, JobRepository
from mattectl.watch.handler import start_observers, stop_observers
from mattectl.watch.intake import Intake

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
    settings = make_settings(watch={"stability_s": 0.2})
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
    settings = make_settings(watch={"stability_s": 0.0})
    inbox = settings.watch[0].input
    intake = Intake(settings.watch, repo, lambda job: None)
    data = small_photo.read_bytes()
    for i in range(12):
        (inbox / f"{i}.jpg").write_bytes(data + bytes([i]))
        intake.notify("w0", inbox / f"{i}.jpg")
    assert intake._inbox.qsize() == 5  # bounded; the rest is left to the scan it asked for
    intake.tick()
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
