"""The daemon benchmark's folder: the settings it measures are the ones the daemon loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mattectl import config
from mattectl.config import ModelsConfig
from mattectl.evaluation import daemon_bench
from mattectl.imageio.options import EdgeMode


@pytest.mark.parametrize("edges", [None, "clean", "matting", "off"])
def test_the_benchmark_daemon_runs_the_edges_mode_asked_for(tmp_path: Path,
                                                            edges: str | None) -> None:
    (tmp_path / "in").mkdir()
    options = daemon_bench.DaemonBenchOptions(rounds=1, edges=edges)
    path = daemon_bench._config(tmp_path, ModelsConfig(), tmp_path / "models", options)
    (watch,) = config.load(path).watch
    default = config.WatchConfig.model_fields["edges"].default
    assert watch.edges == (EdgeMode(edges) if edges else default)
    assert watch.clean_edges is True and watch.stability_s == options.stability_s


def test_the_benchmark_daemon_loads_the_models_settings_of_the_bare_loop(tmp_path: Path) -> None:
    """The bare loop runs the user's [models]; the daemon it is compared with must too (it ran
    bfloat16 against a float32 bare loop when only dir, isolation and threads were written)."""
    (tmp_path / "in").mkdir()
    weights = tmp_path / "mine.pth"
    models = config.parse({"models": {
        "isolation": "inline", "threads": 2, "idle_unload_s": 60, "preload": ["u2netp"],
        "paths": {"u2netp": str(weights)},
        "u2net": {"precision": "float32", "resample": "lanczos"}}}).models
    options = daemon_bench.DaemonBenchOptions(rounds=1, workers=4)
    path = daemon_bench._config(tmp_path, models, tmp_path / "models", options)
    loaded = config.load(path)
    assert loaded.models == models.model_copy(update={"dir": tmp_path / "models"})
    other = models.model_copy(update={"preload": ["bshm", "u2netp"]})
    path = daemon_bench._config(tmp_path, other, tmp_path / "models", options)
    assert config.load(path).models.preload == ["u2netp"]  # the bare loop has no other model
    assert loaded.models.u2net.precision == "float32"
    assert loaded.daemon.worker_count == 4


def test_what_was_not_measured_is_null_in_the_json() -> None:
    """A model running inline has no process to take the CPU of, nor a spinning bare loop."""
    nan = float("nan")
    one = daemon_bench.Round(bare_s=2.0, bare_cpu_s=nan, bare_spinning_s=nan,
                             drop_to_last_s=2.5, first_to_last_s=2.0, daemon_cpu_s=1.0,
                             inference_cpu_s=0.0, stages_ms=dict.fromkeys(daemon_bench.STAGES,
                                                                          1.0))
    result = daemon_bench.DaemonBenchResult(4, daemon_bench.DaemonBenchOptions(), [one])
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["ratio"] == 0.8 and data["ratio_spinning"] is None
    assert data["cpu_ms_per_photo"]["bare_cpu_s"] is None
    assert data["rounds"][0]["bare_spinning_s"] is None
