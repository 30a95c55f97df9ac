from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from mattectl.errors import (
    DaemonNotRunningError,
    ExitCode,
    InvalidTransitionError,
    JobLogDamagedError,
    JobLogUnavailableError,
    JobNotFoundError,
    MattectlError,
    SchemaTooNewError,
    SchemaTooOldError,
)
from mattectl.report import DaemonReport
from mattectl.store import engine as store_engine
from mattectl.store.engine import SCHEMA_VERSION, migrate
from mattectl.store.models import utcnow
from mattectl.store.repository import HostInfo, JobRepository, JobResult, NewJob
from mattectl.store.status import JobStatus


def new_job(n: int, folder: str = "studio") -> NewJob:
    return NewJob(folder, Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 100 + n, 1_000 + n)


@pytest.fixture
def repo(job_log: JobRepository) -> JobRepository:
    """These tests run on the SQLite file and on PostgreSQL (conftest's ``job_log``)."""
    return job_log


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Iterator[JobRepository]:
    repository = JobRepository.open(tmp_path / "state" / "jobs.sqlite3")
    yield repository
    repository.close()


def test_database_is_sqlite_in_wal_mode_with_a_schema_version(
        sqlite_repo: JobRepository) -> None:
    repo = sqlite_repo
    with repo.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(text("SELECT max(version) FROM schema_version")).scalar() \
            == SCHEMA_VERSION
    assert migrate(repo.engine) == SCHEMA_VERSION  # idempotent


def test_newer_schema_is_refused(repo: JobRepository) -> None:
    with repo.engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version (version, applied_at) "
                          "VALUES (:v, CURRENT_TIMESTAMP)"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(MattectlError, match="newer than this mattectl"):
        migrate(repo.engine)


def test_a_locked_job_log_is_a_domain_error_not_the_drivers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_MS", 50)
    db = tmp_path / "jobs.sqlite3"
    repo = JobRepository.open(db)
    holder = sqlite3.connect(db, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")  # someone's sqlite3 shell with a write open
        with pytest.raises(JobLogUnavailableError, match="locked or unavailable: database is "
                                                         "locked") as raised:
            repo.add(new_job(1))
        assert raised.value.reason == "database is locked"
        holder.rollback()
        assert repo.add(new_job(1))[1]  # the lock is gone: the same call succeeds
    finally:
        holder.close()
        repo.close()


def test_same_content_in_the_same_folder_is_one_job(repo: JobRepository) -> None:
    first, created = repo.add(new_job(1))
    again, created_again = repo.add(new_job(1))
    other_folder, created_other = repo.add(new_job(1, folder="other"))
    assert created and not created_again and created_other
    assert again.id == first.id != other_folder.id


def test_lifecycle_and_timings(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    claimed = repo.claim("host:1:w0", ["studio"])
    assert claimed is not None and claimed.id == job.id
    assert claimed.status == JobStatus.RUNNING and claimed.attempts == 1
    assert repo.claim("host:1:w1", ["studio"]) is None
    done = repo.finish(job.id, "host:1:w0", JobResult(
        model="u2netp", device="cpu", output_path=Path("/out/1.png"), decode_ms=1.0,
        inference_ms=2.0, encode_ms=3.0, db_ms=0.5, total_ms=7.0, width=4, height=3))
    assert done.status == JobStatus.DONE
    assert (done.model, done.device, done.inference_ms, done.output_path) == \
        ("u2netp", "cpu", 2.0, Path("/out/1.png"))
    assert done.finished_at is not None and done.finished_at.tzinfo is not None


def test_transitions_outside_the_table_are_refused(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    with pytest.raises(InvalidTransitionError, match="queued -> done"):
        repo.finish(job.id, "w", JobResult())
    repo.claim("w", ["studio"])
    with pytest.raises(InvalidTransitionError, match="claimed by w"):
        repo.fail(job.id, "another-worker", "boom")
    repo.fail(job.id, "w", "boom")
    with pytest.raises(InvalidTransitionError):
        repo.fail(job.id, "w", "again")
    with pytest.raises(JobNotFoundError):
        repo.get(999)


def test_claim_only_from_active_folders_and_due_jobs(repo: JobRepository) -> None:
    repo.add(new_job(1, folder="paused"))
    repo.add(new_job(2))
    assert repo.claim("w", ["elsewhere"]) is None
    assert repo.claim("w", []) is None
    claimed = repo.claim("w", ["studio"])
    assert claimed is not None
    repo.requeue(claimed.id, "w", "disk full", delay_s=3600)
    assert repo.claim("w", ["studio"]) is None  # not due for an hour
    assert repo.counts()["studio"] == {"queued": 1, "waiting": 1}


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    setup = JobRepository.open(db)
    for n in range(60):
        setup.add(new_job(n))
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        repo = JobRepository.open(db)  # its own engine, as another process would have
        barrier.wait()
        mine = claimed.setdefault(name, [])
        while (job := repo.claim(name, ["studio"])) is not None:
            mine.append(job.id)
        repo.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in claimed.values() for i in ids]
    assert sorted(all_ids) == sorted(set(all_ids))
    assert len(all_ids) == 60
    setup.close()


def test_reap_requeues_only_this_hosts_running_jobs(repo: JobRepository) -> None:
    for n in range(3):
        repo.add(new_job(n))
    mine_old = repo.claim("studio-pc:100:w0", ["studio"])
    other_host = repo.claim("other-pc:7:w0", ["studio"])
    assert mine_old and other_host
    assert repo.reap("studio-pc", max_attempts=3) == ([mine_old.id], [])
    job = repo.get(mine_old.id)
    assert job.status == JobStatus.QUEUED and job.attempts == 1  # the interrupted attempt counts
    assert "left running by studio-pc:100:w0" in (job.error or "")
    assert repo.get(other_host.id).status == JobStatus.RUNNING


def test_a_job_that_keeps_killing_the_daemon_fails(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    for attempt in range(1, 4):
        repo.claim(f"pc:{attempt}:w0", ["studio"])
        requeued, failed = repo.reap("pc", max_attempts=3)
        assert (requeued, failed) == (([job.id], []) if attempt < 3 else ([], [job.id]))
    final = repo.get(job.id)
    assert final.status == JobStatus.FAILED and "stopped during this job 3 times" in final.error


def test_prune_deletes_only_old_finished_rows(repo: JobRepository) -> None:
    from datetime import timedelta

    from mattectl.store.models import utcnow

    for n in range(3):
        repo.add(new_job(n))
    a = repo.claim("w", ["studio"])
    repo.finish(a.id, "w", JobResult())
    b = repo.claim("w", ["studio"])  # still running
    assert repo.prune(utcnow() - timedelta(days=1)) == 0
    assert repo.prune(utcnow() + timedelta(seconds=1)) == 1
    assert {j.id for j in repo.list()} == {b.id, 3}


def test_retry_failed_and_done(repo: JobRepository) -> None:
    a, _ = repo.add(new_job(1))
    b, _ = repo.add(new_job(2))
    for _ in (a, b):
        repo.claim("w", ["studio"])
    repo.fail(a.id, "w", "corrupt")
    repo.finish(b.id, "w", JobResult())
    assert repo.retry_failed() == [a.id]
    assert repo.get(a.id).status == JobStatus.QUEUED and repo.get(a.id).error is None
    assert repo.retry(b.id).status == JobStatus.QUEUED


def test_retry_leaves_a_running_job_to_its_worker(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    repo.claim("w", ["studio"])
    with pytest.raises(InvalidTransitionError, match="only from done, failed"):
        repo.retry(job.id)
    running = repo.get(job.id)
    assert running.status == JobStatus.RUNNING and running.claimed_by == "w"
    assert running.attempts == 1


def test_record_output_needs_the_claim(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    repo.claim("w", ["studio"])
    repo.record_output(job.id, "w", Path("/out/1.png"))
    assert repo.get(job.id).output_path == Path("/out/1.png")
    with pytest.raises(InvalidTransitionError):
        repo.record_output(job.id, "other", Path("/out/2.png"))


def test_find_known_matches_path_size_and_mtime(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    assert repo.find_known("studio", Path("/in/1.jpg"), 101, 1001).id == job.id
    assert repo.find_known("studio", Path("/in/1.jpg"), 101, 9999) is None


def test_daemon_heartbeat_rows(repo: JobRepository) -> None:
    repo.register_daemon("pc:1", "pc", 1, "0.1", DaemonReport(paused={}))
    repo.heartbeat("pc:1", DaemonReport(paused={"a": "why"}))
    [d] = repo.daemons()
    assert d.report == DaemonReport(paused={"a": "why"}) and d.stopped_at is None
    repo.daemon_stopped("pc:1")
    assert repo.daemons()[0].stopped_at is not None


def test_jobs_tried_before_wait_behind_fresh_ones(repo: JobRepository) -> None:
    first, _ = repo.add(new_job(1))
    repo.claim("pc:1:w0", ["studio"])
    repo.reap("pc", max_attempts=3)  # interrupted once: back in the queue with attempts=1
    second, _ = repo.add(new_job(2))
    assert repo.claim("pc:2:w0", ["studio"]).id == second.id
    assert repo.claim("pc:2:w0", ["studio"]).id == first.id


# -- the memory of delivered photos, the schema's upgrade, a damaged database (issue 13) --------

V1_SCHEMA = Path(__file__).with_name("schema_v1.sql")


def make_v1_database(path: Path) -> None:
    """A job database as mattectl made it at schema version 1, with a done and a failed job."""
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA.read_text())
    con.execute("INSERT INTO schema_version VALUES (1, '2024-01-01 00:00:00')")
    for status, n, output in (("done", "a", "/out/a.png"), ("failed", "b", None)):
        con.execute(
            "INSERT INTO jobs (folder, input_path, rel_path, input_hash, input_size, "
            "input_mtime_ns, status, attempts, output_path, created_at, updated_at, "
            "available_at, finished_at) VALUES ('studio', ?, ?, ?, 10, 20, ?, 1, ?, "
            "'2024-01-01 00:00:00', '2024-01-01 00:00:00', '2024-01-01 00:00:00', "
            "'2024-01-02 00:00:00')",
            (f"/in/{n}.jpg", f"{n}.jpg", n * 64, status, output))
    con.commit()
    con.close()


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    make_v1_database(db)
    inode = db.stat().st_ino
    repo = JobRepository.open(db)
    try:
        assert db.stat().st_ino == inode  # the same file, upgraded; not a new one
        with repo.engine.connect() as conn:
            assert [v for (v,) in conn.execute(text(
                "SELECT version FROM schema_version ORDER BY version"))] == \
                list(range(1, SCHEMA_VERSION + 1))  # each migration in turn
        done, failed = sorted(repo.list(), key=lambda j: j.id)
        assert (done.status, done.output_path, done.output_hash, done.precision,
                done.confidence, done.refine_ms) == \
            (JobStatus.DONE, Path("/out/a.png"), None, None, None, None)
        assert failed.status == JobStatus.FAILED
        # The done jobs already in the log are remembered as delivered, before any is pruned.
        delivery = repo.delivered("studio", "a" * 64)
        assert delivery is not None and delivery.output_path == Path("/out/a.png")
        assert delivery.job_id == done.id and delivery.delivered_at == done.finished_at
        assert repo.delivered("studio", "b" * 64) is None
        job, _ = repo.add(new_job(3))
        repo.claim("w", ["studio"])
        repo.record_output(job.id, "w", Path("/out/3.png"), "c" * 64)
        assert repo.get(job.id).output_hash == "c" * 64
        assert migrate(repo.engine) == SCHEMA_VERSION  # nothing left to do
    finally:
        repo.close()


def test_a_delivered_photo_is_remembered_after_its_job_row_is_pruned(
        repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    skipped, _ = repo.add(new_job(2))
    repo.claim("w", ["studio"])
    repo.claim("w", ["studio"])
    result = JobResult(output_path=Path("/out/1.png"), output_hash="f" * 64)
    with pytest.raises(InvalidTransitionError):
        repo.finish(job.id, "another worker", result)
    assert repo.delivered("studio", job.input_hash) is None  # one transaction with the finish
    repo.finish(job.id, "w", result)
    repo.finish(skipped.id, "w", JobResult(note="skipped: /out/2.png already exists"))
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET finished_at = '2000-01-01 00:00:00'"))
    assert repo.prune(utcnow()) == 2 and repo.list() == []
    delivery = repo.delivered("studio", job.input_hash)
    assert delivery is not None
    assert (delivery.output_path, delivery.output_hash, delivery.job_id) == \
        (Path("/out/1.png"), "f" * 64, job.id)
    assert repo.delivered("studio", skipped.input_hash) is None  # it wrote nothing
    assert repo.delivered("elsewhere", job.input_hash) is None
    assert repo.find_delivered("studio", Path("/in/1.jpg"), 101, 1001) == delivery
    assert repo.find_delivered("studio", Path("/in/1.jpg"), 101, 9999) is None
    assert repo.deliveries_before(utcnow() + timedelta(seconds=1)) == [delivery]
    assert repo.forget_deliveries([delivery.id]) == 1
    assert repo.delivered("studio", job.input_hash) is None


def test_a_garbled_database_is_a_clear_error_for_writers_and_readers(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    JobRepository.open(db).close()
    with db.open("r+b") as fh:
        fh.write(b"this is not a database header")
    for writer in (True, False):
        with pytest.raises(JobLogDamagedError) as raised:
            JobRepository.open(db, writer=writer)
        message = str(raised.value)
        assert str(db) in message and "not an SQLite database" in message
        assert "mattectl db reset --keep-backup" in message and "mattectl db restore" in message
        assert raised.value.exit_code == ExitCode.DATABASE


def test_corrupt_pages_are_found_by_the_start_up_check_and_by_readers(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    repo = JobRepository.open(db)
    for n in range(300):
        repo.add(new_job(n))
    repo.close()
    con = sqlite3.connect(db)
    index_page, = con.execute("SELECT rootpage FROM sqlite_master "
                              "WHERE name = 'ix_jobs_finished'").fetchone()
    jobs_page, = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()
    page_size, = con.execute("PRAGMA page_size").fetchone()
    con.close()

    def garble(page: int) -> None:
        with db.open("r+b") as fh:
            fh.seek((page - 1) * page_size)
            fh.write(b"\xff" * page_size)

    garble(index_page)  # an index: every query still works, only SQLite's check sees it
    JobRepository.open(db).close()
    with pytest.raises(JobLogDamagedError, match=r"is corrupt .*quick_check"):
        JobRepository.open(db, verify=True)
    garble(jobs_page)
    reader = JobRepository.open(db, writer=False)
    try:
        with pytest.raises(JobLogDamagedError, match="database disk image is malformed"):
            reader.list()
    finally:
        reader.close()


def test_an_emptied_or_lost_database_is_refused_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "state" / "jobs.sqlite3"
    JobRepository.open(db).close()
    os.truncate(db, 0)
    for writer in (True, False):
        with pytest.raises(JobLogDamagedError, match=r"is empty \(0 bytes\)"):
            JobRepository.open(db, writer=writer)
    assert db.stat().st_size == 0  # left as it is for the studio to look at
    db.unlink()
    with pytest.raises(JobLogDamagedError, match="is missing"):
        JobRepository.open(db)
    assert not db.exists()


def test_a_reader_never_creates_the_database(tmp_path: Path) -> None:
    with pytest.raises(JobLogUnavailableError, match="no job database"):
        JobRepository.open(tmp_path / "jobs.sqlite3", writer=False)
    assert list(tmp_path.iterdir()) == []


# -- Alembic ------------------------------------------------------------------------------------

V4_SCHEMA = Path(__file__).with_name("schema_v4.sql")


def test_a_version_4_database_made_before_alembic_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(V4_SCHEMA.read_text())
    con.execute("INSERT INTO schema_version VALUES (4, '2026-01-01 00:00:00')")
    con.execute(
        "INSERT INTO jobs (folder, input_path, rel_path, input_hash, input_size, input_mtime_ns, "
        "status, attempts, confidence, refine_ms, claimed_by, created_at, updated_at, "
        "available_at, started_at) VALUES ('studio', '/in/a.jpg', 'a.jpg', ?, 10, 20, "
        "'running', 1, 0.9, 12.5, 'old-pc:1:w0', '2026-01-01 00:00:00', '2026-01-01 00:00:00', "
        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')", ("a" * 64,))
    con.commit()
    con.close()
    inode = db.stat().st_ino
    repo = JobRepository.open(db)
    try:
        assert db.stat().st_ino == inode
        with repo.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                == f"{SCHEMA_VERSION:04d}"
            assert [v for (v,) in conn.execute(text(
                "SELECT version FROM schema_version ORDER BY version"))] == [4, 5]
        job, = repo.list()
        assert (job.status, job.confidence, job.refine_ms, job.lease_until) == \
            (JobStatus.RUNNING, 0.9, 12.5, None)
        assert repo.hosts() == []
        assert repo.reap("old-pc", max_attempts=3) == ([job.id], [])
        assert migrate(repo.engine) == SCHEMA_VERSION  # nothing left to do
    finally:
        repo.close()


def test_a_schema_from_a_newer_mattectl_is_refused_by_writers_and_readers(
        repo: JobRepository, tmp_path: Path) -> None:
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'"))
    with pytest.raises(SchemaTooNewError, match="newer than this mattectl knows") as exc:
        migrate(repo.engine)
    assert exc.value.exit_code == ExitCode.DATABASE
    target = repo.path or repo.engine.url.render_as_string(hide_password=False)
    for writer in (True, False):
        with pytest.raises(SchemaTooNewError, match="upgrade mattectl"):
            JobRepository.open(target, writer=writer)


def test_a_reader_of_an_older_schema_is_told_to_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(V4_SCHEMA.read_text())
    con.execute("INSERT INTO schema_version VALUES (4, '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooOldError, match="mattectl db upgrade"):
        JobRepository.open(db, writer=False)
    with pytest.raises(SchemaTooOldError, match="mattectl db upgrade"):
        JobRepository.open(db, upgrade=False)
    JobRepository.open(db).close()  # upgrades
    JobRepository.open(db, writer=False).close()


def test_workstations_starting_together_create_the_schema_once(pg_url: str) -> None:
    opened: list[JobRepository] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            opened.append(JobRepository.open(pg_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with opened[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar() == 1
    for repository in opened:
        repository.close()


# -- claims and leases --------------------------------------------------------------------------

def test_a_claim_on_postgresql_skips_a_row_another_transaction_holds(pg_url: str) -> None:
    repo = JobRepository.open(pg_url)
    first, _ = repo.add(new_job(1))
    second, _ = repo.add(new_job(2))
    got: list[object] = []
    with repo.engine.connect() as holder:
        holder.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first.id})
        thread = threading.Thread(target=lambda: got.append(repo.claim("pc:1:w0", ["studio"])))
        thread.start()
        thread.join(10)
        blocked = thread.is_alive()
        holder.rollback()
    thread.join()
    repo.close()
    assert not blocked  # a plain conditional UPDATE would wait for the holder's lock
    assert [job.id for job in got] == [second.id]  # type: ignore[attr-defined]


def test_concurrent_claims_on_postgresql_never_share_a_job(pg_url: str) -> None:
    setup = JobRepository.open(pg_url)
    for n in range(80):
        setup.add(new_job(n))
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(6)

    def worker(name: str) -> None:
        repo = JobRepository.open(pg_url)  # its own engine: another workstation
        barrier.wait()
        mine = claimed.setdefault(name, [])
        while (job := repo.claim(f"{name}:1:w0", ["studio"])) is not None:
            mine.append(job.id)
        repo.close()

    threads = [threading.Thread(target=worker, args=(f"pc{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_ids = [i for ids in claimed.values() for i in ids]
    assert sorted(all_ids) == sorted(set(all_ids)) and len(all_ids) == 80
    assert {job.status for job in setup.list(limit=100)} == {JobStatus.RUNNING}
    setup.close()


def test_a_claim_carries_a_lease_that_its_daemon_renews(repo: JobRepository) -> None:
    repo.lease_s = 30
    for n in range(2):
        repo.add(new_job(n))
    before = utcnow()
    mine = repo.claim("pc1:10:w0", ["studio"])
    theirs = repo.claim("pc2:20:w0", ["studio"])
    assert mine and theirs and mine.lease_until is not None
    assert before + timedelta(seconds=29) < mine.lease_until < utcnow() + timedelta(seconds=31)
    repo.lease_s = 300
    assert repo.renew_leases("pc1:10") == 1
    assert repo.get(mine.id).lease_until > utcnow() + timedelta(seconds=290)
    assert repo.get(theirs.id).lease_until == theirs.lease_until
    done = repo.finish(mine.id, "pc1:10:w0", JobResult())
    assert done.lease_until is None


def test_a_job_whose_lease_ran_out_is_queued_again_for_another_host(
        repo: JobRepository) -> None:
    for n in range(2):
        repo.add(new_job(n))
    dead = repo.claim("pc1:10:w0", ["studio"])
    alive = repo.claim("pc2:20:w0", ["studio"])
    assert dead and alive
    with repo.engine.begin() as conn:  # pc1 stopped renewing a minute ago
        conn.execute(text("UPDATE jobs SET lease_until = :t WHERE id = :id"),
                     {"t": (utcnow() - timedelta(minutes=1)).replace(tzinfo=None),
                      "id": dead.id})
    assert repo.expire_leases(max_attempts=3) == ([dead.id], [])
    back = repo.get(dead.id)
    assert (back.status, back.attempts, back.claimed_by) == (JobStatus.QUEUED, 1, None)
    assert "lease of pc1:10:w0 ran out" in (back.error or "")
    assert repo.get(alive.id).status == JobStatus.RUNNING
    assert repo.expire_leases(max_attempts=3) == ([], [])
    taken = repo.claim("pc3:30:w0", ["studio"])
    assert taken is not None and (taken.id, taken.attempts) == (dead.id, 2)
    with pytest.raises(InvalidTransitionError):
        repo.finish(dead.id, "pc1:10:w0", JobResult())  # pc1 woke up: the job is not its own


def test_a_lease_that_keeps_running_out_fails_the_job(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    for attempt in range(1, 3):
        repo.claim(f"pc{attempt}:1:w0", ["studio"])
        with repo.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET lease_until = :t"),
                         {"t": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None)})
        assert repo.expire_leases(max_attempts=2) == \
            (([job.id], []) if attempt < 2 else ([], [job.id]))
    final = repo.get(job.id)
    assert final.status == JobStatus.FAILED and "2 times; not retried" in (final.error or "")


def test_reap_takes_a_host_name_literally(repo: JobRepository) -> None:
    for n in range(2):
        repo.add(new_job(n))
    neighbour = repo.claim("gpuX1:7:w0", ["studio"])
    mine = repo.claim("gpu_1:8:w0", ["studio"])
    assert neighbour and mine
    # '_' is LIKE's one-character wildcard: "gpu_1:%" matched gpuX1's jobs too
    assert repo.reap("gpu_1", max_attempts=3) == ([mine.id], [])
    assert repo.get(neighbour.id).status == JobStatus.RUNNING


# -- workstations -------------------------------------------------------------------------------

def test_hosts_register_beat_and_stop(repo: JobRepository) -> None:
    now = utcnow()
    for name in ("pc2", "pc1"):
        repo.register_host(HostInfo(name, f"{name}:1", "1.0", "NVIDIA H100", ["u2netp"], 2,
                                    now, now, None))
    repo.host_heartbeat("pc1", "pc1:1", ["u2netp", "bshm"])
    repo.host_heartbeat("pc2", "pc2:999")  # an older instance's beat does not count
    repo.host_stopped("pc2", "pc2:1")
    pc1, pc2 = repo.hosts()
    assert (pc1.name, pc1.models, pc1.stopped_at) == ("pc1", ["u2netp", "bshm"], None)
    assert pc1.heartbeat_at > now and pc2.heartbeat_at == now and pc2.stopped_at is not None


def test_housekeeping_runs_on_one_workstation_at_a_time(pg_url: str) -> None:
    one, two = JobRepository.open(pg_url), JobRepository.open(pg_url)
    try:
        with one.exclusive("prune") as first, two.exclusive("prune") as second, \
                two.exclusive("backup") as other:
            assert (first, second, other) == (True, False, True)
        with two.exclusive("prune") as again:
            assert again
    finally:
        one.close()
        two.close()


def test_a_reader_of_an_empty_server_database_is_told_no_daemon_ran(pg_url: str) -> None:
    with pytest.raises(DaemonNotRunningError, match="no daemon has run with it"):
        JobRepository.open(pg_url, writer=False)


def test_search_by_part_of_the_name_any_case_folder_status_and_time(repo: JobRepository) -> None:
    names = ["wedding/Ann_01.jpg", "wedding/ann%02.jpg", "shoot/bob.jpg"]
    jobs = [repo.add(NewJob("studio" if i < 2 else "other", Path(f"/in/{name}"), name, f"h{i}",
                            1, 1))[0] for i, name in enumerate(names)]
    repo.claim("h:1:w0", ["other"])
    repo.fail(jobs[2].id, "h:1:w0", "broken")

    def found(**query: object) -> list[str]:
        return [j.rel_path for j in repo.search(**query)]  # type: ignore[arg-type]

    assert found(name="ANN") == ["wedding/ann%02.jpg", "wedding/Ann_01.jpg"]  # newest first
    assert found(name="%") == ["wedding/ann%02.jpg"]  # a wildcard is a plain character here
    assert found(name="n_0") == ["wedding/Ann_01.jpg"]
    assert found(folder="other") == found(status=[JobStatus.FAILED]) == ["shoot/bob.jpg"]
    now = utcnow()
    assert len(found(since=now - timedelta(hours=1), until=now + timedelta(hours=1))) == 3
    assert found(since=now + timedelta(hours=1)) == found(until=now - timedelta(hours=1)) == []


def test_output_hashes_of_the_jobs_that_still_have_rows(repo: JobRepository) -> None:
    job, _ = repo.add(new_job(1))
    repo.claim("h:1:w0", ["studio"])
    repo.finish(job.id, "h:1:w0", JobResult(output_path=Path("/out/a.png"), output_hash="ab" * 32))
    queued, _ = repo.add(new_job(2))
    assert repo.output_hashes([job.id, queued.id, 9999]) == {job.id: "ab" * 32, queued.id: None}
    assert repo.output_hashes(range(1, 1200)) == {job.id: "ab" * 32, queued.id: None}
