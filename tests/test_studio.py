"""Several workstations, one studio: three real daemons (separate state directories and host
names) on one PostgreSQL job log, watching one shared drop folder. One is killed mid-flood; the
others finish its jobs once its lease runs out, and every photo is cut out exactly once."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.store.repository import Job, JobRepository
from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess
from .support import ALLOW_ROOT_TOML, wait_for

pytestmark = pytest.mark.slow

PHOTOS = 150
HOSTS = ("gpu-a", "gpu-b", "gpu-c")
CONFIG = """
[daemon]
state_dir = "state"
heartbeat_s = 0.5
retry_delay_s = 0.2
workers = 2
{allow_root}

[database]
host_name = "{host}"
lease_s = 5.0

[models]
dir = "{models}"
isolation = "inline"
threads = 1

[[watch]]
name = "studio"
input = "{shared}/in"
output = "{shared}/out"
processed_dir = "{shared}/processed"
on_success = "move"
stability_s = 0.5
"""


def make_photos(folder: Path, count: int) -> None:
    """Small, distinct photos (each its own content hash), each written whole then renamed."""
    rng = np.random.default_rng(14)
    for n in range(count):
        pixels = rng.integers(0, 256, (96, 72, 3), dtype=np.uint8)
        tmp = folder / f".{n:03d}.tmp"
        Image.fromarray(pixels).save(tmp, format="JPEG")
        os.rename(tmp, folder / f"photo-{n:03d}.jpg")


@pytest.fixture
def studio(tmp_path: Path, pg_url: str) -> Iterator[list[DaemonProcess]]:
    shared = tmp_path / "nas"
    (shared / "in").mkdir(parents=True)
    daemons = []
    for host in HOSTS:
        root = tmp_path / host
        root.mkdir()
        (root / "mattectl.toml").write_text(CONFIG.format(
            allow_root=ALLOW_ROOT_TOML, host=host, models=root / "models", shared=shared))
        daemons.append(DaemonProcess(root, env={"MATTECTL_DATABASE_URL": pg_url}))
    yield daemons
    for daemon in daemons:
        daemon.kill_if_running()


def jobs_of(url: str) -> list[Job]:
    repo = JobRepository.open(url, writer=False)
    try:
        return repo.list(limit=10 * PHOTOS)
    finally:
        repo.close()


def test_three_workstations_cut_out_every_photo_once_when_one_is_killed(
        studio: list[DaemonProcess], pg_url: str) -> None:
    a, b, c = studio
    for daemon in studio:
        daemon.start()
    shared = a.root.parent / "nas"
    make_photos(shared / "in", PHOTOS)

    def b_is_busy_mid_flood() -> bool:
        jobs = jobs_of(pg_url)
        done = sum(j.status == JobStatus.DONE for j in jobs)
        b_running = [j for j in jobs if j.status == JobStatus.RUNNING
                     and (j.claimed_by or "").startswith("gpu-b:")]
        return bool(b_running) and 10 <= done <= PHOTOS - 40

    wait_for(b_is_busy_mid_flood, timeout=300, interval=0.05,
             what="gpu-b to be running a job mid-flood")
    assert b.stop(signal.SIGKILL) == -signal.SIGKILL
    orphans = {j.id for j in jobs_of(pg_url) if j.status == JobStatus.RUNNING
               and (j.claimed_by or "").startswith("gpu-b:")}
    assert orphans

    def all_done() -> bool:
        jobs = jobs_of(pg_url)
        return len(jobs) == PHOTOS and all(j.status == JobStatus.DONE for j in jobs)

    wait_for(all_done, timeout=600, interval=0.5, what="every photo to be cut out")
    jobs = jobs_of(pg_url)
    assert len({j.input_hash for j in jobs}) == PHOTOS  # each photo queued once
    for job in jobs:
        if job.id in orphans:  # finished by a neighbour after gpu-b's lease ran out
            assert job.attempts == 2 and not job.claimed_by.startswith("gpu-b:"), job
    outputs = sorted(p.name for p in (shared / "out").iterdir() if not p.name.startswith("."))
    assert len(outputs) == PHOTOS == len({j.output_path for j in jobs})
    assert {Path(j.output_path).name for j in jobs} == set(outputs)
    assert sorted(p.name for p in (shared / "processed").iterdir()) == \
        [f"photo-{n:03d}.jpg" for n in range(PHOTOS)]  # each original moved once
    assert list((shared / "in").iterdir()) == []
    by_host = Counter(j.claimed_by.split(":")[0] for j in jobs)
    assert set(by_host) <= set(HOSTS) and by_host["gpu-a"] and by_host["gpu-c"]

    for daemon in studio:  # any workstation's status shows the studio
        def b_down(daemon: DaemonProcess = daemon) -> bool:
            hosts = {h["name"]: h for h in json.loads(
                daemon.cli("status", "--json").stdout)["hosts"]}
            return hosts["gpu-b"]["state"] == "down"

        wait_for(b_down, timeout=60, what="gpu-b to show as down")
        ov = json.loads(daemon.cli("status", "--json").stdout)
        assert [(h["name"], h["state"]) for h in ov["hosts"]] == \
            [("gpu-a", "up"), ("gpu-b", "down"), ("gpu-c", "up")]
        assert sum(h["running"] + h["leased"] for h in ov["hosts"]) == 0
        folder, = ov["folders"]
        assert (folder["queued"], folder["running"], folder["done"], folder["failed"]) == \
            (0, 0, PHOTOS, 0)
    assert a.stop() == 0 and c.stop() == 0
