"""`mattectl db` and what every command that reads the job database says when it is damaged:
the real `mattectl` in a subprocess where the point is what a person sees (no traceback)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mattectl.errors import ExitCode
from mattectl.store import backup
from mattectl.store.repository import JobRepository, JobResult, NewJob

from .daemon_process import DaemonProcess, write_config

# Each command is a real `mattectl` process: not in the fast lane (scripts/dev.sh test --fast).
pytestmark = pytest.mark.slow


@pytest.fixture
def mattectl(tmp_path: Path) -> DaemonProcess:
    """The CLI on a config whose state directory is ``state`` (no daemon started)."""
    write_config(tmp_path)
    return DaemonProcess(tmp_path)


def db_of(mattectl: DaemonProcess) -> Path:
    return mattectl.root / "state" / "jobs.sqlite3"


def make_log(db: Path, jobs: int = 1) -> None:
    repo = JobRepository.open(db)
    for n in range(jobs):
        job, _ = repo.add(NewJob("studio", Path(f"/in/{n}.jpg"), f"{n}.jpg", f"{n:064x}", 1, 1))
        repo.claim("w", ["studio"])
        repo.fail(job.id, "w", "corrupt JPEG", JobResult())
    repo.close()


def run_daemon(mattectl: DaemonProcess) -> subprocess.CompletedProcess[str]:
    """`mattectl run`, which must refuse at once (a daemon that started would time out here)."""
    return subprocess.run([sys.executable, "-m", "mattectl", "run", "--config",
                           str(mattectl.config)], capture_output=True, text=True,
                          env=mattectl.env, timeout=60)


def said_clearly(result, db: Path, what: str) -> None:
    """Exit 5 with one message naming the file, what happened and the ways out; no traceback."""
    assert result.returncode == ExitCode.DATABASE, result.stderr
    assert "Traceback" not in result.stderr and "sqlalchemy" not in result.stderr
    text = " ".join(result.stderr.split())  # the console wraps long lines
    assert str(db) in text and what in text
    assert "mattectl db check" in text and "mattectl db reset --keep-backup" in text
    assert "mattectl db restore" in text


def test_every_command_that_reads_a_damaged_database_says_so_and_exits_5(
        mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    make_log(db, jobs=300)
    os.truncate(db, 0)  # emptied
    said_clearly(mattectl.cli("status"), db, "is empty (0 bytes)")
    said_clearly(run_daemon(mattectl), db, "is empty (0 bytes)")
    assert db.stat().st_size == 0  # not replaced by a fresh database
    make_log(db.with_name("other.sqlite3"))
    db.write_bytes(db.with_name("other.sqlite3").read_bytes())
    with db.open("r+b") as fh:
        fh.write(b"garbage, not a header")
    said_clearly(mattectl.cli("jobs", "list"), db, "is not an SQLite database")
    said_clearly(mattectl.cli("jobs", "retry", "--failed"), db, "is not an SQLite database")
    db.unlink()  # lost, though one was created here
    said_clearly(mattectl.cli("jobs", "show", "1"), db, "is missing")


def test_corrupt_pages_end_run_and_jobs_list_with_the_same_clear_message(
        mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    make_log(db, jobs=300)
    con = sqlite3.connect(db)
    jobs_page, = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()
    con.close()
    with db.open("r+b") as fh:
        fh.seek((jobs_page - 1) * 4096)
        fh.write(b"\xff" * 4096)
    said_clearly(mattectl.cli("jobs", "list"), db, "is corrupt")
    said_clearly(run_daemon(mattectl), db, "is corrupt")


def test_db_check_exits_0_when_sound_and_1_when_damaged(mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    none = mattectl.cli("db", "check")
    assert none.returncode == 0 and "none yet" in none.stdout
    make_log(db)
    backup.backup(db, keep=3)
    ok = mattectl.cli("db", "check", "--json")
    found = json.loads(ok.stdout)
    assert ok.returncode == 0 and found["ok"] and found["problems"] == []
    assert found["schema_version"] == found["expected_version"] and len(found["backups"]) == 1
    db.write_bytes(b"garbage" * 100)
    bad = mattectl.cli("db", "check", "--quick")
    assert bad.returncode == 1 and "DAMAGED" in bad.stdout
    assert "not an SQLite database" in bad.stdout and "mattectl db reset" in bad.stdout
    assert "Traceback" not in bad.stderr


def test_db_reset_needs_keep_backup_and_a_stopped_daemon_then_starts_afresh(
        mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    make_log(db)
    db.write_bytes(b"garbage" * 100)
    refused = mattectl.cli("db", "reset")
    assert refused.returncode == ExitCode.USAGE and "--keep-backup" in refused.stderr
    lock = os.open(mattectl.root / "state" / "mattectl.pid", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running daemon holds it
        running = mattectl.cli("db", "reset", "--keep-backup")
        assert running.returncode == 1 and "stop it first" in running.stderr
        assert db.read_bytes() == b"garbage" * 100
    finally:
        os.close(lock)
    done = mattectl.cli("db", "reset", "--keep-backup")
    assert done.returncode == 0, done.stderr
    [aside] = (mattectl.root / "state").glob("jobs.sqlite3.bad-*")
    assert aside.read_bytes() == b"garbage" * 100 and str(aside) in done.stdout
    status = mattectl.cli("jobs", "list", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == []


def test_db_backup_and_restore(mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    make_log(db, jobs=2)
    taken = mattectl.cli("db", "backup")
    assert taken.returncode == 0, taken.stderr
    [copy] = backup.backups(db)
    assert str(copy) in taken.stdout
    os.truncate(db, 0)
    restored = mattectl.cli("db", "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    listed = mattectl.cli("jobs", "list", "--json")
    assert sorted(j["rel_path"] for j in json.loads(listed.stdout)) == ["0.jpg", "1.jpg"]
    [aside] = (mattectl.root / "state").glob("jobs.sqlite3.replaced-*")
    assert aside.stat().st_size == 0  # the emptied file, kept
    broken = mattectl.cli("db", "restore", str(aside))
    assert broken.returncode == 1 and "cannot be restored: empty (0 bytes)" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_db_upgrade_brings_a_version_4_file_up_and_run_refuses_a_newer_schema(
        mattectl: DaemonProcess) -> None:
    db = db_of(mattectl)
    db.parent.mkdir(mode=0o700)
    con = sqlite3.connect(db)
    con.executescript(Path(__file__).with_name("schema_v4.sql").read_text())
    con.execute("INSERT INTO schema_version VALUES (4, '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    upgraded = mattectl.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema version 5" in upgraded.stdout
    assert json.loads(mattectl.cli("db", "check", "--json").stdout)["schema_version"] == 5
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '0042'")
    con.commit()
    con.close()
    refused = run_daemon(mattectl)
    assert refused.returncode == ExitCode.DATABASE
    assert "Traceback" not in refused.stderr
    assert "schema version 42, newer than this mattectl knows (5): upgrade mattectl" in \
        " ".join(refused.stderr.split())


def test_a_postgresql_password_is_never_shown(mattectl: DaemonProcess, pg_url: str) -> None:
    url = pg_url.replace("mattectl@", "mattectl:s3cret-pw@")  # trust auth: any password
    mattectl.env["MATTECTL_DATABASE_URL"] = url
    checked = mattectl.cli("config", "check")
    upgraded = mattectl.cli("db", "upgrade")
    assert checked.returncode == upgraded.returncode == 0, checked.stderr + upgraded.stderr
    assert "mattectl:***@" in checked.stdout and "mattectl:***@" in upgraded.stdout
    status = mattectl.cli("status")  # no daemon ran: exit 3, said without the password
    assert status.returncode == ExitCode.NOT_RUNNING
    db_check = mattectl.cli("db", "check")
    assert db_check.returncode == 0 and "state:    ok" in db_check.stdout, db_check.stdout
    backed_up = mattectl.cli("db", "backup")  # the server's business, said so
    assert backed_up.returncode == ExitCode.USAGE and "pg_dump" in backed_up.stderr
    for said in (checked, upgraded, status, db_check, backed_up):
        assert "s3cret-pw" not in said.stdout + said.stderr
