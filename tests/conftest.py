"""Shared fixtures. Tests use real parts: SQLite files, the filesystem, watchdog observers and
the real u2netp weights shipped inside the package; tests that need the photos in ../shared/data
skip with a reason when that folder is missing."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mattectl import checks
from mattectl.config import Settings
from mattectl.store.repository import JobRepository

from .daemon_process import DaemonProcess, write_config
from .pgserver import pg_server, pg_url  # noqa: F401 (fixtures)
from .support import (  # noqa: F401 (older tests import them here)
    AS_ROOT,
    HUMAN_IMAGES,
    REPO_ROOT,
    SHARED,
    SHARED_MODELS,
    U2NETP_WEIGHTS,
    need,
    wait_for,
)
from .tiny_backend import tiny_models  # noqa: F401 (a fixture)


@pytest.fixture
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with nothing installed, so that u2netp loads from the weights shipped inside
    the package, as on a fresh machine. (The name is older than the embedded model: these were
    the weights in ../shared/models.)"""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def human_photos() -> list[Path]:
    return sorted(need(HUMAN_IMAGES).iterdir())


@pytest.fixture
def small_photo(human_photos: list[Path]) -> Path:
    """A real photo small enough to keep tests quick (the smallest file of the set)."""
    return min(human_photos, key=lambda p: p.stat().st_size)


@pytest.fixture
def make_settings(tmp_path: Path, shared_models: Path) -> Callable[..., Settings]:
    """Build validated settings over tmp folders: ``make_settings(watch={...}, daemon={...})``."""

    def build(watch: dict[str, Any] | list[dict[str, Any]] | None = None,
              **sections: dict[str, Any]) -> Settings:
        watches = watch if isinstance(watch, list) else [watch or {}]
        tables = []
        for i, w in enumerate(watches):
            name = w.get("name", f"w{i}")
            table = {"name": name, "input": f"in-{name}", "output": f"out-{name}",
                     "stability_s": 0.5, **w}
            (tmp_path / table["input"]).mkdir(parents=True, exist_ok=True)
            tables.append(table)
        data: dict[str, Any] = {
            "daemon": {"state_dir": "state", "heartbeat_s": 0.5, "retry_delay_s": 0.2,
                       "allow_root": AS_ROOT, **sections.pop("daemon", {})},
            # In-process models: the tests' own backends (tiny_backend) live in this process.
            # The default, process isolation, is tested in test_isolated/test_daemon_backends.
            "models": {"dir": str(shared_models), "isolation": "inline",
                       **sections.pop("models", {})},
            "watch": tables,
            **sections,
        }
        return checks.parse(data, source="test", base_dir=tmp_path)

    return build


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[JobRepository]:
    repository = JobRepository.open(tmp_path / "state" / "jobs.sqlite3")
    yield repository
    repository.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def job_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobRepository]:
    """The job log on each database mattectl supports: the SQLite file, and PostgreSQL on the
    session's throw-away server (skipped, saying why, only where no PostgreSQL is installed)."""
    target: Path | str = tmp_path / "state" / "jobs.sqlite3"
    if request.param == "postgresql":
        target = request.getfixturevalue("pg_url")
    repository = JobRepository.open(target)
    yield repository
    repository.close()


@pytest.fixture
def small_tmpfs() -> Iterator[Callable[..., Path]]:
    """``small_tmpfs(folder, "size=16k")`` mounts a small tmpfs on ``folder`` (a real full or
    read-only filesystem); skips when mounting is not allowed (not root). Unmounted after."""
    mounted: list[Path] = []

    def mount(folder: Path, *options: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs",
                                 str(folder)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip()}); "
                        "this test needs root")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads of its own running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()
                  and not t.name.startswith(("ThreadPoolExecutor", "pytest_timeout"))]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A `mattectl run` subprocess on tmp folders with the real u2netp (not started yet)."""
    write_config(tmp_path)
    proc = DaemonProcess(tmp_path)
    yield proc
    proc.kill_if_running()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse every connection and name lookup that leaves this machine; returns the attempts
    (a test asserts the list is empty). Loopback and Unix sockets stay allowed."""
    import socket

    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def local(host: object) -> bool:
        return not isinstance(host, str) or host in ("localhost", "") or \
            host.startswith(("127.", "::1", "/"))

    def connect(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if not local(host):
            attempts.append(f"connect {address}")
            raise OSError(f"network access refused in tests: {address}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not local(host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(f"name lookup refused in tests: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync")


@pytest.fixture
def chromium(tmp_path: Path) -> Callable[..., str]:
    """Run Debian's headless Chromium on a local page with a fresh profile:
    ``chromium(page, "--dump-dom")`` returns the DOM after scripts ran; other flags such as
    ``--screenshot=FILE`` work too. Skips when Chromium is not installed (scripts/dev.sh
    installs it)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed: scripts/dev.sh setup installs it (apt, as root)")
    runs = iter(range(1_000_000))

    def run(page: Path, *flags: str) -> str:
        profile = tmp_path / f"chromium-profile-{next(runs)}"
        done = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             *flags, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return run
