"""The HTML report, opened in a real headless Chromium: it renders and shows every picture."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.evaluation import bench, summary
from mattectl.evaluation.report import render, write_report
from mattectl.evaluation.runner import Previews, evaluate, find_samples

from .evalkit import DATA, ColourRuleBackend, write_small_set
from .support import need

# Headless Chromium: not in the fast lane (scripts/dev.sh test --fast).
pytestmark = pytest.mark.slow

STATUS = re.compile(r'id="image-status"[^>]*data-shown="(\d+)"[^>]*data-total="(\d+)"')


@pytest.fixture
def evaluation(tmp_path: Path):
    need(DATA)
    write_small_set(tmp_path / "set", subjects=2, backgrounds=2)
    samples = find_samples(tmp_path / "set" / "images", tmp_path / "set" / "alphas")
    backends = {"keyer-soft": ColourRuleBackend("keyer-soft", 2.0),
                "keyer-hard": ColourRuleBackend("keyer-hard", 8.0)}
    return evaluate(samples, backends), list(backends)


def pictures_shown(dom: str) -> tuple[int, int]:
    match = STATUS.search(dom)
    assert match, "the page's picture check did not run"
    return int(match[1]), int(match[2])


def test_report_renders_every_picture_offline(evaluation, tmp_path: Path,
                                              chromium: Callable[..., str]) -> None:
    results, backends = evaluation
    page = write_report(tmp_path / "report.html", render(
        results=results, backends=backends, devices={b: "cpu" for b in backends}))
    html = page.read_text()
    # Self-contained: no picture, style or script is fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert html.count('src="data:image/jpeg;base64,') == 4 * (2 + 2 * len(backends))
    # and per photo the hair at 100 %: the photo, each backend's cutout, the truth
    assert html.count('src="data:image/png;base64,') == 4 * (2 + len(backends))

    dom = chromium(page, "--dump-dom")
    assert pictures_shown(dom) == (40, 40)
    # Worst first: the articles follow the worst backend's MAE, descending.
    order = re.findall(r'<article id="image-\d+"><h3>\d+\. ([^<]+)</h3>', dom)
    worst = [max(r.value(b, summary.DEFAULT_SORT) for b in backends) for r in results]
    expected = [r.sample.name for _, r in sorted(zip(worst, results, strict=True),
                                                 key=lambda pair: -pair[0])]
    assert order == expected
    # The table states the normalisation of every number.
    assert "sum of |error| over the region / 1000" in dom
    assert "mean of error^2 over the region x 1000" in dom

    shot = tmp_path / "report.png"
    chromium(page, f"--screenshot={shot}", "--window-size=1400,1800")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 20  # tables and pictures, not a blank page


def test_a_picture_that_cannot_be_shown_is_counted_and_marked(
        evaluation, tmp_path: Path, chromium: Callable[..., str]) -> None:
    results, backends = evaluation
    first = results[0]
    assert first.previews is not None
    broken = Previews(b"not a jpeg", first.previews.truth, first.previews.cutouts,
                      first.previews.heat)
    results = [dataclasses.replace(first, previews=broken), *results[1:]]
    page = write_report(tmp_path / "report.html", render(results=results, backends=backends))
    dom = chromium(page, "--dump-dom")
    assert pictures_shown(dom) == (39, 40)
    assert dom.count('class="broken"') == 1


def test_speed_section_has_the_table_and_plots(tmp_path: Path,
                                               chromium: Callable[..., str]) -> None:
    backend = ColourRuleBackend("keyer", 2.0)
    size = bench.parse_sizes("320x240")[0]
    prober = bench.Prober(ColourRuleBackend("probe-keyer", 4.0), "official")
    (result,) = bench.bench(backend, size, bench.make_inputs(size, 3),
                            bench.BenchOptions(count=3, rounds=1), prober)
    assert result.probe_model == "probe-keyer"
    for name in bench.STAGES:
        stage = result.stages[name]
        assert stage is not None, name
        assert 0 < stage.p50_ms <= stage.p95_ms
        assert stage.count == 3
    page = write_report(tmp_path / "speed.html", render(bench=[result]))
    dom = chromium(page, "--dump-dom")
    assert "keyer 320x240 batch 1, auto threads" in dom
    row = dom[dom.index("keyer 320x240 batch 1, auto threads</td>"):]
    row = row[:row.index("</tr>")]
    for name in bench.STAGES:
        stage = result.stages[name]
        assert f"<td>{stage.p50_ms:.0f} / {stage.p95_ms:.0f}</td>" in row  # type: ignore[union-attr]
    assert dom.count("<svg") == 2
    # throughput bars, then one segment per stage: probe and refinement are in the plot
    assert len(re.findall(r"<rect", dom)) >= 3 + len(bench.STAGES)
    assert "<title>probe: " in dom
    assert "<title>refinement: " in dom
    assert "absent" not in dom
