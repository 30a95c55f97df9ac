"""The whole daemon as a user runs it: `mattectl run` in a subprocess, real photos dropped in."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from mattectl.config import auto_workers, cores_available
from mattectl.errors import ExitCode
from mattectl.fsutil import is_temp
from mattectl.housekeeping import prune_jobs
from mattectl.overview import when
from mattectl.store import backup, database
from mattectl.store.manifest import MANIFEST_NAME
from mattectl.store.repository import JobRepository
from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess, write_config
from .support import wait_for

# `mattectl run` in a subprocess: not in the fast lane (scripts/dev.sh test --fast).
pytestmark = pytest.mark.slow


def outputs(root: Path) -> list[Path]:
    """The cutouts (and any partial file), not the folder's delivery manifest."""
    return sorted(p for p in (root / "out").rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def test_drop_photos_get_cutouts_and_status_tells_the_truth(daemon: DaemonProcess,
                                                            human_photos: list[Path]) -> None:
    daemon.start()
    photos = sorted(human_photos, key=lambda p: p.stat().st_size)[:2]
    for photo in photos:
        shutil.copyfile(photo, daemon.root / "in" / photo.name)
    (daemon.root / "in" / "truncated.jpg").write_bytes(photos[0].read_bytes()[:2000])
    (daemon.root / "in" / "empty.jpg").write_bytes(b"")
    (daemon.root / "in" / "readme.jpg").write_text("not a photo")
    jobs = wait_for(lambda: (js := daemon.jobs()) and len(js) == 5
                    and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in js) and js,
                    timeout=120, what="five finished jobs")
    status = daemon.status()
    assert status["state"] == "running" and status["healthy"] is True
    # daemon.workers = "auto" (the default): a worker per core the daemon may use, plus one
    assert status["workers"] == auto_workers(cores_available()) >= 3
    shown = " ".join(daemon.cli("status").stdout.split())  # wrapped where the width says
    assert f"since {when(status['since'])}, {status['workers']} workers, heartbeat " in shown
    [folder] = status["folders"]
    assert (folder["done"], folder["failed"], folder["queued"], folder["running"]) == (2, 3, 0, 0)
    [model] = status["models"]
    assert model["name"] == "u2netp" and model["jobs"] == 2 and model["devices"] == ["cpu"]
    assert model["p50_ms"] > 0 and model["p95_ms"] >= model["p50_ms"]
    done = [j for j in jobs if j.status == JobStatus.DONE]
    assert status["last_output"]["output"] in {str(j.output_path) for j in done}
    errors = {j.rel_path: j.error for j in jobs if j.status == JobStatus.FAILED}
    assert "truncated" in errors["truncated.jpg"]
    assert "empty file" in errors["empty.jpg"]
    assert "not an image" in errors["readme.jpg"]
    for photo in photos:
        with Image.open(daemon.root / "out" / f"{photo.stem}.png") as cutout:
            assert cutout.mode == "RGBA" and cutout.size == Image.open(photo).size
    listed = daemon.cli("jobs", "list", "--status", "failed", "--json")
    assert sorted(j["rel_path"] for j in json.loads(listed.stdout)) == \
        ["empty.jpg", "readme.jpg", "truncated.jpg"]
    assert daemon.stop() == 0
    after = daemon.cli("status", "--json")
    assert after.returncode == 3 and json.loads(after.stdout)["state"] == "stopped"


def test_a_slow_copy_and_a_rename_each_give_exactly_one_complete_cutout(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    # A quiet time well above the copy's pauses, so that a loaded machine cannot stretch one.
    daemon.config.write_text(daemon.config.read_text().replace("stability_s = 0.5",
                                                               "stability_s = 1.5"))
    daemon.start()
    slow, renamed = sorted(human_photos, key=lambda p: p.stat().st_size)[:2]
    data = slow.read_bytes()
    step = len(data) // 5 + 1
    with (daemon.root / "in" / "slow.jpg").open("wb") as fh:
        for i in range(0, len(data), step):  # pauses shorter than stability_s
            fh.write(data[i:i + step])
            fh.flush()
            time.sleep(0.3)
            assert not daemon.jobs(), "a job was queued before the copy finished"
    part = daemon.root / "in" / "renamed.jpg.part"
    shutil.copyfile(renamed, part)
    part.rename(daemon.root / "in" / "renamed.jpg")
    jobs = wait_for(lambda: (js := daemon.jobs()) and len(js) == 2
                    and all(j.status == JobStatus.DONE for j in js) and js,
                    timeout=120, what="both cutouts")
    assert sorted(j.rel_path for j in jobs) == ["renamed.jpg", "slow.jpg"]
    assert [p.name for p in outputs(daemon.root)] == ["renamed.png", "slow.png"]
    for source, name in ((slow, "slow.png"), (renamed, "renamed.png")):
        with Image.open(daemon.root / "out" / name) as cutout, Image.open(source) as photo:
            cutout.load()  # the whole file decodes: complete, not a partial write
            assert cutout.mode == "RGBA" and cutout.size == photo.size
    assert daemon.stop() == 0


def test_killed_mid_job_requeues_and_every_input_gets_one_output(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    daemon.start()
    photos = human_photos[:6]
    for photo in photos:
        shutil.copyfile(photo, daemon.root / "in" / photo.name)
    wait_for(lambda: any(j.status == JobStatus.RUNNING for j in daemon.jobs()), timeout=60,
             what="a running job")
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    left_running = [j.id for j in daemon.jobs() if j.status == JobStatus.RUNNING]
    assert left_running, "the kill should leave a job marked running"
    # Its row still says running; the dead pid tells `status` otherwise.
    after_kill = daemon.cli("status", "--json")
    assert after_kill.returncode == 3
    assert json.loads(after_kill.stdout)["state"] == "stale"
    daemon.start()
    jobs = wait_for(lambda: (js := daemon.jobs()) and len(js) == len(photos)
                    and all(j.status == JobStatus.DONE for j in js) and js,
                    timeout=180, what="every job done after the restart")
    for job_id in left_running:
        assert next(j for j in jobs if j.id == job_id).status == JobStatus.DONE
    files = outputs(daemon.root)
    assert not [p for p in files if is_temp(p)], "a partial file was left behind"
    assert sorted(p.name for p in files) == sorted(f"{p.stem}.png" for p in photos)
    assert "re-queued" in (daemon.root / "daemon.log").read_text()
    assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_state_is_refused(daemon: DaemonProcess) -> None:
    daemon.start()
    second = subprocess.run([sys.executable, "-m", "mattectl", "run", "--config",
                             str(daemon.config)], capture_output=True, text=True,
                            env=daemon.env, timeout=60)
    assert second.returncode == 1 and "another mattectl" in second.stderr
    assert daemon.stop() == 0


def test_without_weights_the_daemon_starts_and_says_what_is_missing(tmp_path: Path,
                                                                    small_photo: Path) -> None:
    # u2netp is shipped with mattectl; a folder on u2net needs it pulled first.
    write_config(tmp_path, models=tmp_path / "no-models", watch='model = "u2net"')
    proc = DaemonProcess(tmp_path)
    proc.launch()
    try:
        shutil.copyfile(small_photo, tmp_path / "in" / "a.jpg")
        result = wait_for(lambda: (r := proc.cli("status", "--json")).returncode == 1 and r,
                          timeout=60, what="a running but unhealthy daemon")
        status = json.loads(result.stdout)
        assert status["state"] == "running" and not status["healthy"]
        assert "`mattectl models pull u2net`" in status["folders"][0]["paused"]
        wait_for(lambda: proc.jobs(), what="the photo to be queued")
        assert proc.jobs()[0].status == JobStatus.QUEUED  # held, not failed, not lost
        assert "`mattectl models pull u2net`" in proc.log_text()
    finally:
        assert proc.stop() == 0


def _skips(daemon: DaemonProcess) -> int:
    return daemon.log_text().count("skipped a.jpg (studio): already delivered as")


def test_a_delivered_photo_is_never_cut_out_again_after_pruning_or_a_lost_job_log(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    photo, changed = sorted(human_photos, key=lambda p: p.stat().st_size)[:2]
    db = daemon.root / "state" / "jobs.sqlite3"
    daemon.start()
    shutil.copyfile(photo, daemon.root / "in" / "a.jpg")  # on_success = "keep": it stays
    wait_for(lambda: [j for j in daemon.jobs() if j.status == JobStatus.DONE], timeout=120,
             what="the cutout")
    assert daemon.stop() == 0
    # daemon.retention_days later: the job row is pruned, the original is still in the folder.
    repo = JobRepository.open(db)
    try:
        with repo.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET finished_at = '2000-01-01 00:00:00'"))
        assert prune_jobs(repo, retention_days=90) == 1
    finally:
        repo.close()
    daemon.start()  # its start-up scan sees a.jpg again
    wait_for(lambda: _skips(daemon) == 1 or daemon.jobs(), timeout=60, what="a.jpg looked at")
    assert daemon.jobs() == [] and [p.name for p in outputs(daemon.root)] == ["a.png"]
    assert daemon.stop() == 0

    # The job log is lost: the daemon refuses to start on it, says why and what to do.
    for path in (db, db.with_name("jobs.sqlite3-wal"), db.with_name("jobs.sqlite3-shm")):
        path.unlink(missing_ok=True)
    refused = daemon.launch()
    assert refused.wait(timeout=60) == ExitCode.DATABASE
    daemon.log.close()
    message = " ".join(daemon.log_text().split())
    assert f"the job database {db} is missing" in message
    assert "mattectl db reset --keep-backup" in message and not db.exists()
    reset = daemon.cli("db", "reset", "--keep-backup")
    assert reset.returncode == 0, reset.stderr
    daemon.start()  # a fresh job log: the output folder's manifest remembers a.jpg
    wait_for(lambda: _skips(daemon) == 2 or daemon.jobs(), timeout=60, what="a.jpg looked at")
    assert daemon.jobs() == [] and [p.name for p in outputs(daemon.root)] == ["a.png"]
    # A changed photo under the same name is a new photo: cut out, beside the first cutout.
    shutil.copyfile(changed, daemon.root / "in" / "a.jpg")
    [job] = wait_for(lambda: (js := daemon.jobs()) and js[0].status == JobStatus.DONE and js,
                     timeout=120, what="the changed photo's cutout")
    assert job.output_path == daemon.root / "out" / "a-1.png"
    assert [p.name for p in outputs(daemon.root)] == ["a-1.png", "a.png"]
    assert daemon.stop() == 0


def test_the_daemon_backs_up_its_job_log_while_it_runs(tmp_path: Path) -> None:
    # Every ~0.4 s, keeping 2: fast enough to watch the rotation.
    write_config(tmp_path, daemon="backup_interval_h = 0.0001\nbackup_keep = 2")
    daemon = DaemonProcess(tmp_path)
    daemon.start()
    try:
        wait_for(lambda: daemon.log_text().count("backed up the job database to") >= 3,
                 timeout=60, what="three backups")
    finally:
        assert daemon.stop() == 0
    kept = backup.backups(tmp_path / "state" / "jobs.sqlite3")
    assert len(kept) == 2
    for copy in kept:
        assert copy.stat().st_mode & 0o777 == 0o600 and database.check(copy).ok
    assert not [p for p in (tmp_path / "state" / "backups").iterdir() if p not in kept]


def test_pruning_runs_on_one_workstation_of_a_shared_job_log_at_a_time(
        make_settings, pg_url: str) -> None:
    from datetime import timedelta

    from mattectl.app import Daemon
    from mattectl.store.models import utcnow
    from mattectl.store.repository import JobResult, NewJob

    settings = make_settings(watch={"name": "studio"}, daemon={"retention_days": 1},
                             database={"url": pg_url, "host_name": "pc1"})
    repo, neighbour = JobRepository.open(pg_url), JobRepository.open(pg_url)
    job, _ = repo.add(NewJob("studio", Path("/in/a.jpg"), "a.jpg", "a" * 64, 1, 1))
    repo.claim("pc1:1:w0", ["studio"])
    repo.finish(job.id, "pc1:1:w0", JobResult())
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET finished_at = :t"),
                     {"t": (utcnow() - timedelta(days=2)).replace(tzinfo=None)})
    daemon = Daemon(settings)
    daemon.repo = repo
    try:
        with neighbour.exclusive("prune") as held:  # another workstation is pruning
            assert held
            daemon.prune()
            assert [j.id for j in repo.list()] == [job.id]
        daemon.prune()
        assert repo.list() == []
    finally:
        repo.close()
        neighbour.close()
