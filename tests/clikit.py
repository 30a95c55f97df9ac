"""Running the real `mattectl` command in a subprocess, as a user would."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[1] / "daemon"


def write_config(tmp_path: Path, models_dir: Path) -> Path:
    """A config using the shared models, one inference thread (the machine is shared)."""
    path = tmp_path / "mattectl.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n\n[models]\ndir = "{models_dir}"\n'
                    "threads = 1\n")
    return path


def mattectl(*args: str | Path, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(DAEMON), "COLUMNS": "200"}
    env.pop("MATTECTL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "mattectl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def mattectl_tty(*args: str | Path, columns: int = 80,
                 timeout: float = 280) -> tuple[int, str]:
    """The real ``mattectl`` in a pseudo-terminal ``columns`` wide (``COLUMNS`` says the same):
    its exit code and the screen's text (stdout and stderr, colours removed, ``\\n`` lines)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(DAEMON), "COLUMNS": str(columns), "TERM": "xterm"}
    env.pop("MATTECTL_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "mattectl", *map(str, args)],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed, the command ended
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return code, text.replace("\r\n", "\n").replace("\r", "")
