"""Running the real `mattectl` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
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
