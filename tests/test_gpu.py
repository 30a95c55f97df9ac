"""GPU detection from the driver's files, and the loud warning when a GPU machine mattes on its
CPU. The driver's files are laid out in tmp folders as the NVIDIA driver lays them out; the
models are real (BSHM test graph on TensorFlow, which finds no GPU here)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mattectl import config, gpu
from mattectl.backends.cache import ModelCache
from mattectl.errors import ModelUnavailableError
from mattectl.overview import build_overview
from mattectl.report import DaemonReport
from mattectl.store.repository import JobRepository

from . import bshm_graph


def fake_driver(root: Path, *models: str) -> Path:
    """``/proc/driver/nvidia/gpus`` as the driver writes it, one folder per GPU."""
    for i, model in enumerate(models):
        folder = root / f"0000:{i:02x}:00.0"
        folder.mkdir(parents=True)
        (folder / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 42\n")
    return root


def test_gpus_are_read_from_the_driver(tmp_path: Path) -> None:
    proc = fake_driver(tmp_path / "gpus", "NVIDIA H100 80GB HBM3", "NVIDIA L4")
    assert gpu.nvidia_gpus(proc, tmp_path / "dev") == ["NVIDIA H100 80GB HBM3", "NVIDIA L4"]


def test_device_nodes_count_when_proc_is_missing(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    assert gpu.nvidia_gpus(tmp_path / "none", dev) == [f"NVIDIA GPU ({dev / 'nvidia0'})"]
    assert gpu.nvidia_gpus(tmp_path / "none", tmp_path / "none") == []


def test_gpus_hidden_on_purpose_are_not_there(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    proc = fake_driver(tmp_path / "gpus", "NVIDIA H100")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.nvidia_gpus(proc) == []


def test_warning_only_for_an_unwanted_cpu() -> None:
    gpus = ["NVIDIA H100"]
    assert "runs on the CPU although this machine has NVIDIA H100" in \
        gpu.cpu_fallback_warning("bshm", "cpu", "auto", gpus)
    assert gpu.cpu_fallback_warning("bshm", "cuda:0", "auto", gpus) is None
    assert gpu.cpu_fallback_warning("bshm", "cpu", "cpu", gpus) is None  # asked for
    assert gpu.cpu_fallback_warning("bshm", "cpu", "auto", []) is None  # nothing to use


@pytest.fixture
def gpu_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """This machine, as if the NVIDIA driver showed a GPU that the frameworks cannot use."""
    if gpu.nvidia_gpus():
        pytest.skip("a real GPU is here: the frameworks use it, there is no fall-back to see")
    monkeypatch.setattr(gpu, "PROC_GPUS", fake_driver(tmp_path / "gpus", "NVIDIA H100 80GB HBM3"))
    return gpu.nvidia_gpus()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    return bshm_graph.write_model_dir(tmp_path_factory.mktemp("bshm") / "matte")


def test_cpu_fall_back_is_logged_and_shown_in_status(
        gpu_machine: list[str], model_dir: Path, tmp_path: Path, repo: JobRepository,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = config.parse({"models": {"isolation": "inline", "paths": {"bshm": str(model_dir)}}})
    models = ModelCache(settings.models, tmp_path / "models")
    with caplog.at_level(logging.ERROR):
        assert models.get("bshm").load() == "cpu"
    assert any("bshm runs on the CPU although this machine has NVIDIA H100 80GB HBM3"
               in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    described = models.describe(["bshm"])
    assert described["bshm"].warning.startswith("model bshm runs on the CPU")
    repo.register_daemon("host:1", "host", 1, "test",
                         DaemonReport(models=described, gpus=tuple(gpu_machine)))
    overview = build_overview(settings, repo)
    assert described["bshm"].warning in overview.problems
    assert not overview.healthy
    models.unload_all()


def test_require_gpu_refuses_a_model_on_the_cpu(gpu_machine: list[str], model_dir: Path,
                                                tmp_path: Path) -> None:
    settings = config.parse({"models": {"isolation": "inline", "require_gpu": True,
                                        "paths": {"bshm": str(model_dir)}}})
    backend = ModelCache(settings.models, tmp_path / "models").get("bshm")
    with pytest.raises(ModelUnavailableError, match=r"models\.require_gpu is set"):
        backend.load()
    assert not backend.loaded
