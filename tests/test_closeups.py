"""The hair at 100 %: the window lands where the truth is partial, its pictures are the frame's own
pixels (never resized), and the report shows one labelled crop per setting per photo."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.evaluation import summary, visual
from mattectl.evaluation.closeups import SIDE, CloseupMaker, find_window
from mattectl.evaluation.report import render
from mattectl.evaluation.runner import evaluate, find_samples

from .evalkit import ColourRuleBackend

HAIR = (slice(70, 170), slice(430, 560))  # rows, columns of the hair-like patch


def portrait(seed: int, height: int = 480, width: int = 640) -> tuple[np.ndarray, np.ndarray]:
    """A photo and its truth: an opaque body with a hard (anti-aliased) outline, and one patch of
    strands of partial alpha at :data:`HAIR`; the photo is the truth's composite over a backdrop."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    body = ((yy - 330) / 160.0) ** 2 + ((xx - 250) / 130.0) ** 2
    truth = np.clip((1.0 - body) * 40, 0, 1).astype(np.float32)  # a 1-2 px soft outline
    strands = 0.15 + 0.7 * (0.5 + 0.5 * np.sin(xx[HAIR] * 0.9 + rng.uniform(0, 6)))
    truth[HAIR] = np.maximum(truth[HAIR], strands * rng.uniform(0.6, 1.0, strands.shape))
    subject = np.array([200, 160, 120], np.float32) + rng.normal(0, 6, (height, width, 3))
    backdrop = np.array([40, 90, 160], np.float32) + rng.normal(0, 3, (height, width, 3))
    a = truth[:, :, None]
    photo = np.clip(subject * a + backdrop * (1 - a), 0, 255).astype(np.uint8)
    return photo, truth


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_window_covers_the_partial_alpha_not_the_outline() -> None:
    _, truth = portrait(1)
    window = find_window(truth)
    rows, cols = HAIR
    assert (window.width, window.height, window.basis) == (SIDE, SIDE, "partial alpha")
    assert window.top <= rows.start and rows.stop <= window.top + window.height
    assert window.left <= cols.start and cols.stop <= window.left + window.width
    assert window.partial >= 0.9 * np.count_nonzero(truth[HAIR] > 0.05)


def test_a_binary_truth_shows_its_edge_and_a_small_photo_is_shown_whole() -> None:
    truth = np.zeros((600, 800), np.float32)
    truth[350:, 500:] = 1.0  # the only edge is around the lower right corner
    window = find_window(truth)
    assert window.basis == "edge" and window.partial == 0
    assert (truth[window.slices] == 1).any() and (truth[window.slices] == 0).any()
    small = find_window(np.full((90, 120), 0.5, np.float32))
    assert (small.left, small.top, small.width, small.height) == (0, 0, 120, 90)
    assert find_window(np.zeros((300, 300), np.float32)).basis == "centre"


def test_the_crops_are_the_frames_own_pixels_and_each_prediction_has_its_sad() -> None:
    photo, truth = portrait(2)
    maker = CloseupMaker(photo, truth)
    keyer = ColourRuleBackend("keyer", 3.0)
    alpha = keyer.predict(photo)
    maker.add("keyer", alpha)
    closeup = maker.done()
    rows, cols = closeup.window.slices
    np.testing.assert_array_equal(png(closeup.photo), photo[rows, cols])  # 100 %, lossless
    np.testing.assert_array_equal(png(closeup.cutouts["keyer"]),
                                  visual.over_grey(photo[rows, cols], alpha[rows, cols]))
    np.testing.assert_array_equal(png(closeup.truth),
                                  visual.over_grey(photo[rows, cols], truth[rows, cols]))
    expected = np.abs(alpha[rows, cols] - truth[rows, cols]).sum() / 1000
    assert closeup.sad["keyer"] == pytest.approx(expected, rel=1e-5)


def test_the_report_shows_one_labelled_crop_per_setting_per_photo(tmp_path: Path) -> None:
    for seed in (3, 4):
        photo, truth = portrait(seed)
        save(tmp_path / "images" / f"photo-{seed}.png", photo)
        save(tmp_path / "alphas" / f"photo-{seed}.png", (truth * 255 + 0.5).astype(np.uint8))
    save(tmp_path / "images" / "no-truth.png", np.zeros((40, 60, 3), np.uint8))
    save(tmp_path / "alphas" / "no-truth.png", np.zeros((10, 10), np.uint8))  # unusable
    backends = {"before": ColourRuleBackend("before", 8.0),
                "after": ColourRuleBackend("after", 2.0)}
    results = evaluate(find_samples(tmp_path / "images", tmp_path / "alphas"), backends)
    by_name = {r.sample.name: r for r in results}
    assert by_name["no-truth"].error and by_name["no-truth"].closeup is None

    html = render(results=results, backends=list(backends))
    articles = dict(re.findall(r'<article id="image-\d+"><h3>\d+\. ([^<]+)</h3>(.*?)</article>',
                               html, re.S))
    assert set(articles) == {"photo-3", "photo-4", "no-truth"}
    assert 'class="crop"' not in articles["no-truth"]
    for name in ("photo-3", "photo-4"):
        closeup = by_name[name].closeup
        assert closeup is not None
        crops = re.findall(r'<figure class="crop" style="width:256px">'
                           r'<img src="data:image/png;base64,[^"]+" width="256" height="256" '
                           r'alt="[^"]*"><figcaption>(.*?)</figcaption>', articles[name])
        labels = [re.sub(r"</?b>", "", c) for c in crops]
        assert labels == ["photo", f"before · SAD {closeup.sad['before']:.4g}",
                          f"after · SAD {closeup.sad['after']:.4g}", "truth"]
        assert closeup.window.top <= HAIR[0].start and closeup.window.left <= HAIR[1].start
        assert f"256x256 from x {closeup.window.left}, y {closeup.window.top}" in articles[name]
        # the lower SAD is marked, once
        best = min(closeup.sad, key=closeup.sad.__getitem__)
        assert crops.count(f"<b>{best} · SAD {closeup.sad[best]:.4g}</b>") == 1
        assert sum("<b>" in c for c in crops) == 1

    data = json.loads(json.dumps(summary.to_json(results, list(backends), {}), allow_nan=False))
    windows = {i["name"]: i["closeup"] for i in data["images"]}
    assert windows["no-truth"] is None
    assert windows["photo-3"]["window"]["width"] == 256
    assert set(windows["photo-3"]["sad"]) == {"before", "after"}
