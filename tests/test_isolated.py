"""Process isolation with real TensorFlow failures: an abort in C++ and a hang in Session.run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mattectl import config
from mattectl.backends import BACKENDS
from mattectl.backends.bshm import BshmBackend
from mattectl.backends.catalog import MODELS
from mattectl.backends.child_output import last_words
from mattectl.backends.isolated import IsolatedBackend
from mattectl.errors import BackendError, ModelUnavailableError

from . import bshm_graph
from .support import wait_for

# Each test starts TensorFlow inference processes: not in the fast lane.
pytestmark = pytest.mark.slow

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("graphs")
    return {v: bshm_graph.write_model_dir(root / v, v)
            for v in ("matte", "abort", "hang", "error")}


def isolated(folder: Path, **models: Any) -> IsolatedBackend:
    options = config.parse({"models": {"device": "cpu", **models}}).models
    return IsolatedBackend(MODELS["bshm"], folder, options, BACKENDS["bshm"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_child_answers_like_the_backend_in_process(graphs: dict[str, Path]) -> None:
    backend = isolated(graphs["matte"])
    assert backend.load() == "cpu"
    pid = backend.pid
    assert pid is not None
    assert alive(pid)
    rgb = bshm_graph.photo(320, 200, seed=1)
    inline = BshmBackend(MODELS["bshm"], graphs["matte"], backend.options)
    np.testing.assert_array_equal(backend.predict(rgb), inline.predict(rgb))
    inline.unload()
    backend.unload()
    assert backend.pid is None
    assert not alive(pid)


def test_the_log_says_once_where_the_model_loaded(graphs: dict[str, Path],
                                                  caplog: pytest.LogCaptureFixture,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """One "loaded model" and one "unloaded model" line per load, the proxy's, naming the
    model's process; the child's own (copied to the daemon's journal) said it a second time."""
    backend = isolated(graphs["matte"])
    with caplog.at_level("INFO"):  # the child logs at the root logger's level
        backend.load()
        pid = backend.pid
        backend.unload()
    said = [r.getMessage() for r in caplog.records if "loaded model" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith("loaded model bshm from ")
    assert f" on cpu in its own process (pid {pid}) in " in said[0]
    assert said[1] == "unloaded model bshm"
    child = capfd.readouterr().err  # what the child wrote, copied to the daemon's stderr
    assert "loaded model" not in child


def test_tensorflow_abort_fails_the_call_and_the_next_one_reloads(
        graphs: dict[str, Path]) -> None:
    backend = isolated(graphs["abort"])
    backend.load()
    first = backend.pid
    with pytest.raises(BackendError) as caught:
        backend.predict(bshm_graph.photo(64, 48, corner=bshm_graph.RED))
    message = str(caught.value)
    assert "died while matting a 64x48 photo" in message
    assert "SIGABRT" in message
    assert "test graph abort" in message  # TensorFlow's own last words, from the child's stderr
    assert not backend.loaded
    alpha = backend.predict(bshm_graph.photo(64, 48, seed=2))
    assert alpha.shape == (48, 64)
    assert backend.pid not in (None, first)
    backend.unload()


def test_a_hang_is_killed_after_the_timeout(graphs: dict[str, Path]) -> None:
    backend = isolated(graphs["hang"], predict_timeout_s=2)
    backend.load()
    with pytest.raises(BackendError, match=r"did not answer within 2 s .*killed by SIGKILL"):
        backend.predict(bshm_graph.photo(64, 48, corner=bshm_graph.BLUE))
    assert backend.predict(bshm_graph.photo(64, 48, seed=4)).shape == (48, 64)
    backend.unload()


def test_a_framework_error_fails_the_call_and_restarts_the_child(
        graphs: dict[str, Path]) -> None:
    backend = isolated(graphs["error"])
    backend.load()
    first = backend.pid
    with pytest.raises(BackendError, match=r"failed in TensorFlow.*test graph error.*restarted"):
        backend.predict(bshm_graph.photo(64, 48, corner=bshm_graph.GREEN))
    assert first is not None
    assert not alive(first)
    assert backend.predict(bshm_graph.photo(64, 48, seed=5)).shape == (48, 64)
    assert backend.pid not in (None, first)
    backend.unload()


def test_load_errors_keep_their_kind_and_leave_no_child(graphs: dict[str, Path],
                                                        tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "configuration.json").write_text("{}")
    data = (graphs["matte"] / "tf_graph.pb").read_bytes()
    (broken / "tf_graph.pb").write_bytes(data[: len(data) // 2])
    backend = isolated(broken)
    with pytest.raises(ModelUnavailableError, match="truncated or corrupt"):
        backend.load()
    assert backend.pid is None
    assert not backend.loaded


def test_a_child_that_cannot_start_is_a_backend_error_and_leaks_nothing(
        graphs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    backend = isolated(graphs["matte"])
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(2):  # the second try starts from a clean slate too
        with pytest.raises(BackendError, match="cannot start the inference process"):
            backend.load()
    assert set(os.listdir("/proc/self/fd")) <= before
    assert backend.pid is None and not backend.loaded
    monkeypatch.undo()
    backend.load()  # and once python is there again, it starts
    try:
        assert backend.pid is not None and alive(backend.pid)
    finally:
        backend.unload()


def test_last_words_prefer_the_fatal_line() -> None:
    lines = ["I0000 cudart_stub.cc:31] Could not find cuda drivers\n",
             "E0000 cuda_platform.cc:52] failed call to cuInit\n",
             "F0000 control_flow_ops.cc:737] Abort_op intentional failure; boom\n",
             "*** Check failure stack trace: ***\n", "    @ 0x7f83 tensorflow::AbortOp()\n"]
    assert last_words(lines).endswith("Abort_op intentional failure; boom")
    assert last_words(["Traceback (most recent call last):\n", "ValueError: bad\n"]) == \
        "ValueError: bad"
    assert last_words([]) == ""


def test_the_child_ends_when_the_daemon_dies_without_a_word(graphs: dict[str, Path]) -> None:
    # A daemon killed with SIGKILL unloads nothing; its inference process must not linger.
    script = (
        "import os, sys\nfrom pathlib import Path\n"
        "from mattectl import config\nfrom mattectl.backends import BACKENDS\n"
        "from mattectl.backends.catalog import MODELS\n"
        "from mattectl.backends.isolated import IsolatedBackend\n"
        "o = config.parse({'models': {'device': 'cpu'}}).models\n"
        "b = IsolatedBackend(MODELS['bshm'], Path(sys.argv[1]), o, BACKENDS['bshm'])\n"
        "b.load()\nprint(b.pid, flush=True)\nos.kill(os.getpid(), 9)\n")
    daemon_dir = str(Path(__file__).resolve().parents[1] / "daemon")
    out = subprocess.run([sys.executable, "-c", script, str(graphs["matte"])],
                         capture_output=True, text=True, timeout=240,
                         env={**os.environ, "PYTHONPATH": daemon_dir})
    assert out.returncode == -9
    child = int(out.stdout.split()[0])
    wait_for(lambda: not alive(child), timeout=30, what="the orphaned child to exit")


def test_batches_threads_and_memory_are_forwarded(graphs: dict[str, Path]) -> None:
    backend = isolated(graphs["matte"])
    inline = BshmBackend(MODELS["bshm"], graphs["matte"], backend.options)
    photos = [bshm_graph.photo(80, 60, seed=s) for s in (1, 2, 3)]
    for got, want in zip(backend.predict_batch(photos), inline.predict_batch(photos), strict=True):
        np.testing.assert_array_equal(got, want)
    # TensorFlow fixes its thread pools at start; on the CPU there is no accelerator memory.
    assert backend.set_threads(1) is inline.set_threads(1) is False
    backend.reset_peak_memory()
    assert backend.peak_memory() is None
    inline.unload()
    backend.unload()
