"""A throw-away PostgreSQL server for the tests: Debian's ``initdb`` and ``pg_ctl`` in a temporary
directory, listening on a unix socket only, run as a normal user (``nobody`` when the tests run
as root: PostgreSQL refuses to run as root). One server per test session; each test gets a
database of its own (fixture ``pg_url``). Tests that need it skip, saying why, only where no
PostgreSQL binaries are installed (scripts/dev.sh installs Debian's ``postgresql`` package).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "mattectl"
AS_ROOT = os.geteuid() == 0
RUN_AS = "nobody"


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's versioned folder."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def _as_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *argv] if AS_ROOT else argv


@dataclass
class PostgresServer:
    root: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg://{SUPERUSER}@/{database}"
                f"?host={self.socket_dir}&port={self.port}")

    def psql(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                             dbname=database, autocommit=True) as connection:
            connection.execute(sql)


def start(bin_dir: Path) -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="mattectl-pg-"))
    server = PostgresServer(root, 5432 + os.getpid() % 20000)
    data = root / "data"
    server.socket_dir.mkdir()
    if AS_ROOT:
        user = pwd.getpwnam(RUN_AS)
        for path in (root, server.socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    subprocess.run(_as_user([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                             "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    options = (f"-F -k {server.socket_dir} -p {server.port} -c listen_addresses='' "
               "-c max_connections=200 -c synchronous_commit=off")
    subprocess.run(_as_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                             "-l", str(root / "server.log"), "-w", "start"]),
                   check=True, capture_output=True)
    return server


def stop(bin_dir: Path, server: PostgresServer) -> None:
    subprocess.run(_as_user([str(bin_dir / "pg_ctl"), "-D", str(server.root / "data"),
                             "-m", "immediate", "stop"]), check=False, capture_output=True)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's "
                    "`postgresql` package (scripts/dev.sh test does, as root)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[postgres]'")
    server = start(bin_dir)
    try:
        yield server
    finally:
        stop(bin_dir, server)


_numbers = itertools.count(1)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A URL of a new, empty database on the session's server (dropped afterwards)."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    pg_server.psql(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_server.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
