"""The daemon benchmark's folder: the settings it measures are the ones the daemon loads."""

from __future__ import annotations

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
