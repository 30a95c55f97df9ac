"""The number format of inference: the choice per device, and the CPU calibration on the real
u2netp model, remembered per machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mattectl.backends import precision
from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig, U2NetConfig
from mattectl.errors import BackendError


def _never(name: str, passes: int) -> list[float]:
    raise AssertionError("no calibration was expected")


@pytest.mark.parametrize(("wanted", "half", "chosen"), [
    ("auto", True, "float16"), ("auto", False, "float32"), ("float32", True, "float32"),
    ("float16", False, "float16")])
def test_cuda_takes_half_precision_unless_told(wanted: str, half: bool, chosen: str) -> None:
    options = U2NetConfig(precision=wanted, half=half)
    assert precision.choose(options, torch.device("cuda"), _never, key="k") == chosen


def test_float16_on_the_cpu_is_refused_with_what_to_set() -> None:
    with pytest.raises(BackendError, match=r"models\.u2net\.precision"):
        precision.choose(U2NetConfig(precision="float16"), torch.device("cpu"), _never, key="k")


def test_an_explicit_cpu_format_is_taken_without_calibrating() -> None:
    for wanted in ("float32", "bfloat16"):
        options = U2NetConfig(precision=wanted)
        assert precision.choose(options, torch.device("cpu"), _never, key="k") == wanted


def test_calibration_takes_the_faster_format_by_a_margin() -> None:
    def timer(ms: dict[str, float]):
        return lambda name, passes: [ms[name]] * passes

    assert precision.calibrate(timer({"float32": 300, "bfloat16": 130}))[0] == "bfloat16"
    assert precision.calibrate(timer({"float32": 300, "bfloat16": 290}))[0] == "float32"
    verdict, medians = precision.calibrate(timer({"float32": 300, "bfloat16": 600}))
    assert verdict == "float32"
    assert medians == {"float32": 300, "bfloat16": 600}


def test_the_real_model_calibrates_once_per_machine(
        shared_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.ENV_CACHE_DIR, str(tmp_path))
    options = ModelsConfig(isolation="inline", threads=1)
    first = ModelCache(options, shared_models)
    backend = first.get("u2netp")
    backend.load()
    chosen = backend.precision
    assert chosen in ("float32", "bfloat16")
    verdicts = json.loads((tmp_path / "precision.json").read_text())
    assert list(verdicts.values()) == [chosen]
    first.unload_all()
    # A second load on this machine takes the remembered verdict: plant the other one and see
    # it used, which no calibration would have produced by chance.
    other = "float32" if chosen == "bfloat16" else "bfloat16"
    (tmp_path / "precision.json").write_text(json.dumps({k: other for k in verdicts}))
    second = ModelCache(options, shared_models)
    second.get("u2netp").load()
    assert second.get("u2netp").precision == other
    assert second.describe(["u2netp"])["u2netp"].precision == other
    second.unload_all()


@pytest.mark.slow
def test_the_model_process_reports_its_format(shared_models: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.ENV_CACHE_DIR, str(tmp_path))
    cache = ModelCache(ModelsConfig(isolation="process", u2net=U2NetConfig(
        precision="bfloat16")), shared_models)
    try:
        cache.get("u2netp").load()
        assert cache.get("u2netp").precision == "bfloat16"
    finally:
        cache.unload_all()
