"""The CPU thread policy set before any framework loads (see mattectl/backends/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mattectl.backends
from mattectl.backends import GOMP_DEFAULT_SPINCOUNT, spinning_threads
from mattectl.backends.cache import ModelCache, closing_models
from mattectl.config import ModelsConfig

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


@pytest.mark.slow
def test_benchmarks_can_start_a_model_whose_threads_spin(shared_models: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """spinning_threads() reaches the model's process (the bare loops of `mattectl bench`), and
    only the one started under it: libgomp reads GOMP_SPINCOUNT once, at its start."""
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(mattectl.backends, "_POLICY_GIVEN", False)  # whatever CI's env says

    def environment(cache: ModelCache) -> dict[str, str]:
        backend = cache.get("u2netp")
        backend.load()
        raw = Path(f"/proc/{backend.pid}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    models = ModelsConfig(isolation="process")
    with spinning_threads():
        spinning = ModelCache(models, shared_models)
        with closing_models(spinning):
            child = environment(spinning)
    assert child["GOMP_SPINCOUNT"] == GOMP_DEFAULT_SPINCOUNT
    assert child["OMP_WAIT_POLICY"] == "PASSIVE"  # overridden by the spin count, as libgomp does
    assert "GOMP_SPINCOUNT" not in os.environ  # as it was
    passive = ModelCache(models, shared_models)
    with closing_models(passive):
        assert "GOMP_SPINCOUNT" not in environment(passive)


def test_an_explicit_spin_setting_is_kept_by_the_benchmarks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    with spinning_threads():
        assert os.environ["GOMP_SPINCOUNT"] == "1000"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setattr(mattectl.backends, "_POLICY_GIVEN", True)  # OMP_WAIT_POLICY was set
    with spinning_threads():
        assert "GOMP_SPINCOUNT" not in os.environ
