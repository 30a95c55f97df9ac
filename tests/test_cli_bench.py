"""`mattectl bench` end to end on the real u2netp: table, JSON and report."""

from __future__ import annotations

import json
from pathlib import Path

from .clikit import mattectl, write_config


def test_bench_measures_stages_and_throughputs(tmp_path: Path, shared_models: Path) -> None:
    done = mattectl("bench", "--backend", "u2netp", "--sizes", "480x320", "--count", "2",
                    "--threads", "1,2", "--config", write_config(tmp_path, shared_models),
                    "--json", tmp_path / "bench.json", "--report", tmp_path / "bench.html")
    assert done.returncode == 0, done.stderr
    assert "latency per stage" in done.stdout
    assert "pipe/model" in done.stdout

    one, result = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert one["settings"]["threads"] == 1  # both thread counts measured in the same run
    assert result["settings"]["threads"] == 2
    assert result["backend"] == "u2netp"
    assert result["device"] == "cpu"
    assert result["size"] == {"label": "480x320", "width": 480, "height": 320}
    assert result["stages"]["probe"] is None  # not built yet: reported absent, not faked
    assert result["stages"]["refinement"] is None
    for stage in ("decode", "inference", "encode"):
        assert 0 < result["stages"][stage]["p50_ms"] <= result["stages"][stage]["p95_ms"]
    assert result["stages"]["inference"]["count"] == 2
    for key in ("model_ips", "sequential_ips", "pipeline_ips", "peak_rss_mb"):
        assert result[key] > 0
    rounds = result["per_round"]
    assert result["ratio"] == round(rounds["pipeline"][0] / rounds["model"][0], 4)  # one round
    assert result["peak_gpu_mb"] is None
    assert "<svg" in (tmp_path / "bench.html").read_text()


def test_bench_rejects_an_unknown_size(tmp_path: Path, shared_models: Path) -> None:
    done = mattectl("bench", "--sizes", "1080p,huge",
                    "--config", write_config(tmp_path, shared_models))
    assert done.returncode == 1
    assert "unknown size 'huge'" in done.stderr
