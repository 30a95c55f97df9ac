"""Expected latency per model, device and size class: priors first, then the job log."""

from __future__ import annotations

from pathlib import Path

import pytest

from mattectl.matting.latency import LatencyTracker
from mattectl.rules.latency import PRIORS, LatencyModel, size_class
from mattectl.store.repository import InferenceSample, JobRepository, JobResult, NewJob


def sample(ms: float, model: str = "u2netp", device: str = "cpu",
           size: tuple[int, int] = (1200, 800)) -> InferenceSample:
    return InferenceSample(model, device, ms, *size)


@pytest.mark.parametrize(("megapixels", "label"), [
    (0.5, "<1 MP"), (1.0, "1-4 MP"), (3.99, "1-4 MP"), (24.0, ">=24 MP"), (45.7, ">=24 MP")])
def test_size_classes(megapixels: float, label: str) -> None:
    assert size_class(megapixels) == label


def test_prior_until_enough_jobs_then_the_median() -> None:
    two = LatencyModel([sample(400), sample(500)])
    estimate = two.expected("u2netp", "cpu", 0.96)
    assert estimate.ms == PRIORS["u2netp", "cpu"].at(0.96)
    assert estimate.source == "prior (cpu; 2 jobs so far)"
    three = LatencyModel([sample(400), sample(500), sample(9000)])
    assert three.expected("u2netp", "cpu", 0.96).ms == 500
    assert three.expected("u2netp", "cpu", 0.96).source == "median of 3 jobs (cpu, <1 MP)"


def test_groups_are_kept_apart_by_model_device_and_size() -> None:
    model = LatencyModel([sample(100, device="cuda:0")] * 3 + [sample(800)] * 3
                         + [sample(50, size=(6000, 4000))] * 3 + [sample(2000, model="u2net")] * 3)
    assert model.expected("u2netp", "cuda:0", 0.96).ms == 100
    assert model.expected("u2netp", "cpu", 0.96).ms == 800
    assert model.expected("u2netp", "cpu", 24.0).ms == 50
    assert model.expected("u2net", "cpu", 0.96).ms == 2000
    assert model.expected("u2net", "cuda:1", 0.96).source.startswith("prior (cuda;")


def test_only_the_most_recent_window_counts() -> None:
    newest_first = [sample(100)] * 5 + [sample(5000)] * 50
    assert LatencyModel(newest_first, window=5).expected("u2netp", "cpu", 0.96).ms == 100


def test_unknown_models_get_a_cautious_prior() -> None:
    assert LatencyModel([]).expected("bshm2", "cpu", 1.0).ms >= 3000


def _finish(repo: JobRepository, i: int, ms: float) -> None:
    repo.add(NewJob("f", Path(f"/in/{i}.jpg"), f"{i}.jpg", f"{i:064x}", 1, 1))
    job = repo.claim("w", ["f"])
    assert job is not None
    repo.finish(job.id, "w", JobResult(model="u2netp", device="cpu", inference_ms=ms,
                                       width=1200, height=800))


def test_tracker_learns_from_the_job_log_at_most_every_refresh(repo: JobRepository) -> None:
    now = [0.0]
    tracker = LatencyTracker(repo.recent_inference, refresh_s=30, clock=lambda: now[0])
    assert tracker.current().expected("u2netp", "cpu", 0.96).source.startswith("prior")
    for i, ms in enumerate((300, 310, 320)):
        _finish(repo, i, ms)
    now[0] = 29.0
    assert tracker.current().expected("u2netp", "cpu", 0.96).source.startswith("prior")
    now[0] = 30.0
    assert tracker.current().expected("u2netp", "cpu", 0.96).ms == 310
