"""The daemon's report: one JSON form, read back whole, and rows from other versions still read."""

from __future__ import annotations

import json

from mattectl.report import DaemonReport, ModelReport


def test_a_report_reads_back_equal() -> None:
    report = DaemonReport(
        config="/etc/mattectl/config.toml", paused={"studio": "model u2net is not installed"},
        models={"u2netp": ModelReport(available=True, reason="", backend="u2net",
                                      isolation="process", weights="/models/u2netp.pth",
                                      loaded=True, device="cuda:0")},
        gpus=("NVIDIA L4",), pending_files=3, workers=2, unhealthy=None)
    assert DaemonReport.from_json(report.to_json()) == report


def test_rows_from_older_or_newer_daemons_are_read() -> None:
    older = json.dumps({"paused": {"a": "why"}, "models": {"u2netp": {"loaded": True}}})
    report = DaemonReport.from_json(older)
    assert report.paused == {"a": "why"} and report.pending_files == 0 and report.gpus == ()
    assert report.models["u2netp"] == ModelReport(loaded=True)
    newer = json.dumps({"workers": 2, "queue_depth": 9,
                        "models": {"u2netp": {"device": "cpu", "precision": "fp16"}}})
    report = DaemonReport.from_json(newer)
    assert report.workers == 2 and report.models["u2netp"].device == "cpu"
    assert DaemonReport.from_json("{}") == DaemonReport.from_json(None) == DaemonReport()
