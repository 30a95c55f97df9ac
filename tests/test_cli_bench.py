"""`mattectl bench` end to end on the real u2netp: table, JSON and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clikit import mattectl, write_config


@pytest.mark.slow
def test_bench_measures_stages_and_throughputs(tmp_path: Path, shared_models: Path) -> None:
    done = mattectl("bench", "--backend", "u2netp", "--sizes", "480x320", "--count", "2",
                    "--threads", "1,2", "--config", write_config(tmp_path, shared_models),
                    "--json", tmp_path / "bench.json", "--report", tmp_path / "bench.html")
    assert done.returncode == 0, done.stderr
    assert "latency per stage" in done.stdout
    assert "pipe/model" in done.stdout

    report = json.loads((tmp_path / "bench.json").read_text())
    one, result = report["results"]
    assert one["settings"]["threads"] == 1  # both thread counts measured in the same run
    assert one["settings"]["clean_edges"] == 1
    assert result["settings"]["threads"] == 2
    assert result["backend"] == "u2netp"
    assert result["device"] == "cpu"
    assert result["size"] == {"label": "480x320", "width": 480, "height": 320}
    assert result["probe_model"] == "u2netp"  # the first probe model installed, as the daemon
    for stage in ("decode", "probe", "inference", "refinement", "encode"):
        assert 0 < result["stages"][stage]["p50_ms"] <= result["stages"][stage]["p95_ms"]
        assert result["stages"][stage]["count"] == 2  # one sample per photo and round
    cells = {stage: "{p50_ms:.0f} / {p95_ms:.0f}".format(**result["stages"][stage])
             for stage in ("probe", "refinement")}
    for cell in cells.values():
        assert cell in done.stdout
    assert "absent" not in done.stdout
    assert set(report["stage_notes"]) == {"decode", "probe", "inference", "refinement",
                                          "encode"}
    for key in ("model_ips", "sequential_ips", "pipeline_ips", "peak_rss_mb"):
        assert result[key] > 0
    rounds = result["per_round"]
    assert result["ratio"] == round(rounds["pipeline"][0] / rounds["model"][0], 4)  # one round
    assert result["peak_gpu_mb"] is None
    page = (tmp_path / "bench.html").read_text()
    assert "<svg" in page
    row = page[page.index("u2netp 480x320 batch 1, 2 threads"):]
    row = row[:row.index("</tr>")]
    assert all(f"<td>{cell}</td>" in row for cell in cells.values())
    assert "absent" not in page


@pytest.mark.slow
def test_bench_without_the_probe_says_so(tmp_path: Path, shared_models: Path) -> None:
    done = mattectl("bench", "--backend", "u2netp", "--sizes", "64x48", "--count", "1",
                    "--no-probe", "--no-clean-edges",
                    "--config", write_config(tmp_path, shared_models),
                    "--json", tmp_path / "bench.json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert result["settings"]["clean_edges"] == 0  # measured as a folder without clean edges
    assert result["stages"]["probe"] is None
    assert result["probe_model"] is None
    assert result["stages"]["refinement"]["p50_ms"] > 0  # the other stages still measured
    assert " off " in done.stdout


def test_bench_rejects_an_unknown_size(tmp_path: Path, shared_models: Path) -> None:
    done = mattectl("bench", "--sizes", "1080p,huge",
                    "--config", write_config(tmp_path, shared_models))
    assert done.returncode == 1
    assert "unknown size 'huge'" in done.stderr
