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


@pytest.mark.slow
def test_bench_daemon_measures_the_daemon_against_both_bare_loops(
        tmp_path: Path, shared_models: Path, human_photos: list[Path]) -> None:
    """The command behind the README's daemon figure: a real daemon, a bare loop as the daemon
    runs the model and one with its threads spinning, per round."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted(human_photos, key=lambda p: p.stat().st_size)[:3]:
        (photos / photo.name).write_bytes(photo.read_bytes())
    done = mattectl("bench", "--daemon", "--images", photos, "--rounds", "2", "--edges",
                    "clean", "--workers", "2", "--config",
                    write_config(tmp_path, shared_models), "--json", tmp_path / "d.json")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["photos"] == 3 and len(result["rounds"]) == 2
    assert result["options"]["workers"] == 2 and result["options"]["edges"] == "clean"
    for r in result["rounds"]:
        assert r["bare_s"] > 0 and r["bare_spinning_s"] > 0 and r["drop_to_last_s"] > 0
        assert r["ratio"] == pytest.approx(r["bare_s"] / r["drop_to_last_s"])
        assert r["ratio_spinning"] == pytest.approx(r["bare_spinning_s"] / r["drop_to_last_s"])
        assert r["daemon_cpu_s"] > 0 and r["inference_cpu_s"] > 0
    assert result["ratio_spinning_per_round"] == [r["ratio_spinning"] for r in result["rounds"]]
    assert f"{result['ratio']:.2f}" in done.stdout
    assert f"{result['ratio_spinning']:.2f}" in done.stdout
    assert "round 2: bare loop" in done.stderr and "threads spinning" in done.stderr


@pytest.mark.slow
def test_bench_precision_times_each_format_in_its_own_process(tmp_path: Path,
                                                             shared_models: Path) -> None:
    done = mattectl("bench", "--precision", "float32,bfloat16", "--sizes", "480x320",
                    "--count", "2", "--config", write_config(tmp_path, shared_models),
                    "--json", tmp_path / "p.json")
    assert done.returncode == 0, done.stderr
    rows = {r["precision"]: r for r in json.loads((tmp_path / "p.json").read_text())}
    assert set(rows) == {"float32", "bfloat16"}
    for r in rows.values():
        assert r["forward_ms"] > 0 and r["predict_ms"] > 0
        assert r["gflops"] == pytest.approx(r["gflop"] / (r["forward_ms"] / 1000))
    assert rows["float32"]["gflop"] == pytest.approx(rows["bfloat16"]["gflop"])
    assert 30 < rows["float32"]["gflop"] < 50  # U²-NetP: 39.5 GFLOP at 320x320
    assert "threads spin" in done.stdout
