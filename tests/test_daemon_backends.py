"""The daemon with both backends, as a user runs it: U²-Net (PyTorch) for one folder, BSHM
(TensorFlow) for another, each in its own inference process; a TensorFlow abort in the middle."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl import config, gpu
from mattectl.backends.bshm import BshmBackend
from mattectl.backends.catalog import MODELS
from mattectl.imageio.compose import to_uint8
from mattectl.imageio.read import decode
from mattectl.store.manifest import MANIFEST_NAME
from mattectl.store.status import JobStatus

from . import bshm_graph
from .daemon_process import DaemonProcess
from .support import ALLOW_ROOT_TOML, children, wait_for

# `mattectl run` in a subprocess with two inference processes: not in the fast lane.
pytestmark = pytest.mark.slow

CONFIG = """
[daemon]
state_dir = "state"
heartbeat_s = 0.5
retry_delay_s = 0.2
max_attempts = 2
{allow_root}

[models]
dir = "{models}"
require_gpu = {require_gpu}

[models.paths]
bshm = "{bshm}"

[[watch]]
name = "quick"
input = "in-quick"
output = "out-quick"
stability_s = 0.5
model = "u2netp"

[[watch]]
name = "quality"
input = "in-quality"
output = "out-quality"
stability_s = 0.5
model = "bshm"
"""


def setup(root: Path, *, require_gpu: bool = False) -> DaemonProcess:
    pytest.importorskip("tensorflow")
    for folder in ("in-quick", "in-quality"):
        (root / folder).mkdir()
    bshm = bshm_graph.write_model_dir(root / "bshm-abort", "abort")
    (root / "mattectl.toml").write_text(CONFIG.format(
        models=root / "models", bshm=bshm, require_gpu=str(require_gpu).lower(),
        allow_root=ALLOW_ROOT_TOML))
    return DaemonProcess(root)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = setup(tmp_path)
    yield proc
    proc.kill_if_running()


def finished(daemon: DaemonProcess, count: int) -> list:
    return wait_for(lambda: (js := daemon.jobs()) and len(js) == count
                    and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in js) and js,
                    timeout=300, what=f"{count} finished jobs")


def red_cornered(photo: Path) -> bytes:
    """The photo as a PNG whose top-left pixel is pure red: the test graph aborts on it."""
    rgb = np.asarray(Image.open(photo).convert("RGB")).copy()
    rgb[0, 0] = bshm_graph.RED
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_both_backends_and_a_tensorflow_crash_in_one_daemon(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    daemon.start()
    root = daemon.root
    first, second, third = sorted(human_photos, key=lambda p: p.stat().st_size)[:3]
    shutil.copyfile(first, root / "in-quick" / first.name)
    shutil.copyfile(first, root / "in-quality" / first.name)
    jobs = finished(daemon, 2)
    assert all(j.status == JobStatus.DONE for j in jobs), [j.error for j in jobs]
    assert {(j.folder, j.model, j.device) for j in jobs} == {
        ("quick", "u2netp", "cpu"), ("quality", "bshm", "cpu")}

    # The BSHM cutout carries exactly the alpha the model gives in a process of its own.
    settings = config.load(daemon.config)
    inline = BshmBackend(MODELS["bshm"], settings.models.paths["bshm"], settings.models)
    expected = to_uint8(inline.predict(decode(first.read_bytes(), name="x",
                                              max_pixels=10**9).rgb))
    inline.unload()
    with Image.open(root / "out-quality" / f"{first.stem}.png") as cutout:
        np.testing.assert_array_equal(np.asarray(cutout)[:, :, 3], expected)

    status = daemon.status()
    models = {m["name"]: m for m in status["models"]}
    assert (models["u2netp"]["backend"], models["u2netp"]["devices"]) == ("u2net", ["cpu"])
    assert (models["bshm"]["backend"], models["bshm"]["devices"]) == ("bshm", ["cpu"])
    assert status["healthy"] is True
    listed = {m["name"]: m for m in json.loads(daemon.cli("models", "list", "--json").stdout)}
    assert (listed["bshm"]["loaded"], listed["bshm"]["device"]) == (True, "cpu")
    assert listed["bshm"]["location"] == str(settings.models.paths["bshm"])

    # TensorFlow aborts in the middle of a job: the job is retried, then fails with the reason.
    (root / "in-quality" / "crash.png").write_bytes(red_cornered(second))
    crashed = wait_for(lambda: next((j for j in daemon.jobs() if j.rel_path == "crash.png"
                                     and j.status == JobStatus.FAILED), None),
                       timeout=300, what="the crashing job to fail")
    assert "SIGABRT" in crashed.error
    assert "test graph abort" in crashed.error
    assert "gave up after 2 attempts" in crashed.error
    assert crashed.attempts == 2
    assert (root / "in-quality" / "crash.png").exists()  # the input stays where it was
    assert daemon.proc is not None
    assert daemon.proc.poll() is None  # the daemon itself never noticed more than an error

    # Both folders go on: BSHM is loaded again in a new process.
    shutil.copyfile(third, root / "in-quality" / third.name)
    shutil.copyfile(third, root / "in-quick" / third.name)
    jobs = finished(daemon, 5)
    assert sorted(j.status for j in jobs).count(JobStatus.DONE) == 4
    # Nothing but cutouts (and each folder's delivery manifest): no temp file, no partial one.
    assert not [p for p in root.glob("out-*/*") if p.suffix != ".png" and p.name != MANIFEST_NAME]

    inference = children(daemon.proc.pid)
    assert len(inference) == 2  # one process per framework
    assert daemon.stop() == 0
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in inference),
             what="the inference processes to end with the daemon")
    log = (root / "daemon.log").read_text()
    assert log.count("unloaded model") >= 2
    assert "died while unloading" not in log  # asked to end, not killed


def test_require_gpu_refuses_to_start_without_one(tmp_path: Path) -> None:
    if gpu.nvidia_gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    proc = setup(tmp_path, require_gpu=True)
    result = subprocess.run([sys.executable, "-m", "mattectl", "run", "--config",
                             str(proc.config)], capture_output=True, text=True, env=proc.env,
                            timeout=120)
    assert result.returncode == 1
    assert "models.require_gpu is set, but this machine shows no NVIDIA GPU" in result.stderr
    assert not (tmp_path / "state" / "jobs.sqlite3").exists()  # refused before anything began
