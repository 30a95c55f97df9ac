"""The CPU thread policy set before any framework loads (see mattectl/backends/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from .clikit import DAEMON

PROBE = "import mattectl.backends, os; print(os.environ['OMP_WAIT_POLICY'])"


def run(env_policy: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(DAEMON)}
    env.pop("OMP_WAIT_POLICY", None)
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    return done.stdout.strip()


def test_idle_openmp_threads_sleep_by_default() -> None:
    assert run(None) == "PASSIVE"


def test_an_explicit_policy_is_kept() -> None:
    assert run("ACTIVE") == "ACTIVE"
