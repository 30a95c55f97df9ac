"""Running `mattectl run` as a real subprocess, the way systemd or a person starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mattectl.store.repository import Job, JobRepository

from .support import ALLOW_ROOT_TOML, REPO_ROOT, wait_for

CONFIG = """
[daemon]
state_dir = "state"
heartbeat_s = 0.5
retry_delay_s = 0.2
{allow_root}
{daemon}

[models]
dir = "{models}"

[[watch]]
name = "studio"
input = "in"
output = "out"
stability_s = 0.5
{watch}
"""


def write_config(root: Path, models: Path | None = None, *, daemon: str = "",
                 watch: str = "") -> Path:
    """A config for a daemon under ``root`` (drop folder ``in``, output ``out``); by default
    its models dir holds nothing, so u2netp comes from the weights shipped in the package."""
    (root / "in").mkdir(exist_ok=True)
    path = root / "mattectl.toml"
    path.write_text(CONFIG.format(models=models or root / "models",
                                  allow_root=ALLOW_ROOT_TOML, daemon=daemon, watch=watch))
    return path


class DaemonProcess:
    def __init__(self, root: Path, env: dict[str, str] | None = None,
                 prefix: list[str] | None = None) -> None:
        self.root = root
        self.prefix = prefix or []  # e.g. setpriv, to drop capabilities
        self.config = root / "mattectl.toml"
        self.proc: subprocess.Popen[str] | None = None
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "daemon"), **(env or {})}

    def launch(self) -> subprocess.Popen[str]:
        """Start ``mattectl run`` without waiting for it."""
        self.log = (self.root / "daemon.log").open("a")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "mattectl", "run", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env, text=True)
        return self.proc

    def start(self) -> None:
        """Start ``mattectl run`` and wait until ``mattectl status`` says it runs."""
        self.launch()
        wait_for(lambda: self.running(), timeout=60, what="the daemon to report running")

    def running(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.proc.returncode}:\n"
                                 f"{(self.root / 'daemon.log').read_text()[-3000:]}")
        return self.cli("status").returncode == 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the daemon's stacks, into its log
            time.sleep(1.0)
            self.proc.kill()
            raise AssertionError(f"the daemon did not exit within {timeout} s of signal {sig}:\n"
                                 f"{self.log_text()[-6000:]}") from None
        self.log.close()
        return code

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return (self.root / "daemon.log").read_text()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mattectl", *args, "--config",
                               str(self.config)], capture_output=True, text=True, env=self.env)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)

    def repo(self) -> JobRepository:
        return JobRepository.open(self.root / "state" / "jobs.sqlite3", writer=False)

    def jobs(self) -> list[Job]:
        repo = self.repo()
        try:
            return repo.list(limit=1000)
        finally:
            repo.close()
