"""The report a person looks at: one self-contained HTML page that opens offline.

Every picture is inlined as a ``data:`` URI and the plots are inline SVG, so the file can be
mailed or archived alone. A few lines of script count the pictures the browser could show and
say so at the bottom of the page (and mark any that failed).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from mattectl.evaluation import summary
from mattectl.evaluation.bench import STAGE_NOTES, STAGES, BenchResult
from mattectl.evaluation.closeups import Closeup
from mattectl.evaluation.metrics import METRICS, Region
from mattectl.evaluation.plot import Series, grouped_bars, stacked_bars
from mattectl.evaluation.runner import ImageResult
from mattectl.fsutil import write_file

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2} td.best{font-weight:bold;background:#e6f4e6}
.legend{font-size:13px;color:#444} .error{color:#b00020}
article{border-top:1px solid #ddd;padding-top:8px;margin-top:16px}
.pictures{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0} figure img{display:block;max-width:320px;max-height:320px}
figcaption{font-size:12px;color:#555;text-align:center}
img.broken{outline:3px solid #b00020}
.closeup figure img{max-width:none;max-height:none;image-rendering:pixelated}
.closeup figcaption b{color:#1b5e20}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var shown = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  images.forEach(function (img) { if (shown.indexOf(img) < 0) img.classList.add('broken'); });
  var status = document.getElementById('image-status');
  status.textContent = shown.length + ' of ' + images.length + ' pictures shown';
  status.dataset.shown = shown.length;
  status.dataset.total = images.length;
});
"""


def _data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def _figure(jpeg: bytes, caption: str) -> str:
    return (f'<figure><img src="{_data_uri(jpeg)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _crop_figure(png: bytes, name: str, sad: float | None, best: bool, width: int,
                 height: int) -> str:
    size = f'width="{width}" height="{height}"'
    caption = escape(name) if sad is None else f"{escape(name)} · SAD {_num(sad)}"
    caption = f"<b>{caption}</b>" if best else caption
    uri = _data_uri(png, "image/png")
    return (f'<figure class="crop" style="width:{width}px"><img src="{uri}" {size} '
            f'alt="{escape(name)}"><figcaption>{caption}</figcaption></figure>')


def _closeup(closeup: Closeup, backends: Sequence[str]) -> str:
    """The window at 100 %: the photo, each prediction and the truth over flat grey, with the
    window's SAD (the lowest in bold)."""
    w = closeup.window
    chosen = {"partial alpha": f"{w.partial} pixels of partial true alpha",
              "edge": "no partial true alpha: the truth's edge",
              "centre": "no partial true alpha and no edge: the centre"}.get(w.basis, w.basis)
    shown = [b for b in backends if b in closeup.cutouts]
    best = min((closeup.sad[b] for b in shown), default=None) if len(shown) > 1 else None
    size = w.width, w.height
    figures = [_crop_figure(closeup.photo, "photo", None, False, *size)]
    figures += [_crop_figure(closeup.cutouts[b], b, closeup.sad[b], closeup.sad[b] == best, *size)
                for b in shown]
    figures.append(_crop_figure(closeup.truth, "truth", None, False, *size))
    return (f'<div class="closeup"><h4>At 100 %: {w.width}x{w.height} from x {w.left}, '
            f'y {w.top}</h4><p class="legend">The window where the truth is most uncertain '
            f"({escape(chosen)}), never resized; each cutout and the truth over flat grey; "
            "SAD over the window / 1000.</p>"
            f'<div class="pictures">{"".join(figures)}</div></div>')


def _metric_headers() -> str:
    return "".join(f"<th>{METRICS[key].label} {region}</th>"
                   for region in Region for key in METRICS)


def _means_table(rows: dict[str, dict[str, float]], first: str, mark_best: bool = True) -> str:
    """Rows of mean scores; with ``mark_best`` the lowest value of each column is marked."""
    best = {key: min((r[key] for r in rows.values() if not math.isnan(r[key])), default=None)
            for key in summary.METRIC_KEYS} if mark_best and len(rows) > 1 else {}
    out = [f"<table><tr><th>{escape(first)}</th><th>images</th>{_metric_headers()}"
           "<th>inference ms</th></tr>"]
    for name, means in rows.items():
        cells = "".join(
            f'<td class="{"best" if best and means[k] == best[k] else ""}">'
            f"{_num(means[k])}</td>" for k in summary.METRIC_KEYS)
        out.append(f"<tr><td>{escape(name)}</td><td>{means['images']:.0f}</td>{cells}"
                   f"<td>{_num(means['inference_ms'])}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _legend() -> str:
    items = "".join(f"<li><b>{info.label}</b>: {escape(info.unit)}</li>"
                    for info in METRICS.values())
    return ('<div class="legend"><p>Lower is better. Regions: <b>image</b> = every pixel; '
            "<b>band</b> = pixels whose true alpha is strictly between 0 and 1. "
            f"Sums grow with the number of pixels; means do not.</p><ul>{items}</ul></div>")


def _image_article(rank: int, result: ImageResult, backends: Sequence[str]) -> str:
    tags = ", ".join(f"{k}: {v}" for k, v in sorted(result.sample.tags.items()))
    head = (f'<article id="image-{rank}"><h3>{rank}. {escape(result.sample.name)}</h3>'
            f'<p class="legend">{result.width}x{result.height}'
            f"{' · ' + escape(tags) if tags else ''}"
            f"{' · truth read as ' + escape(result.truth_reading) if result.truth_reading else ''}"
            "</p>")
    if result.error:
        return head + f'<p class="error">{escape(result.error)}</p></article>'
    rows = []
    for b in backends:
        score = result.scores.get(b)
        if score is None:
            continue
        if score.error:
            rows.append(f'<tr><td>{escape(b)}</td><td class="error" colspan="11">'
                        f"{escape(score.error)}</td></tr>")
            continue
        cells = "".join(f"<td>{_num(score.metrics[k])}</td>" for k in summary.METRIC_KEYS)
        label = escape(b) + (f"<br><small>{escape(score.rule)}</small>" if score.rule else "")
        rows.append(f"<tr><td>{label}</td>{cells}<td>{score.inference_ms:.0f}</td></tr>")
    table = (f"<table><tr><th>backend</th>{_metric_headers()}<th>inference ms</th></tr>"
             f"{''.join(rows)}</table>")
    pictures = []
    if result.previews is not None:
        p = result.previews
        pictures += [_figure(p.photo, "photo"), _figure(p.truth, "truth")]
        for b in backends:
            if b in p.cutouts:
                pictures += [_figure(p.cutouts[b], f"{b}: cutout"),
                             _figure(p.heat[b], f"{b}: |error| (black 0, yellow 1)")]
    closeup = _closeup(result.closeup, backends) if result.closeup is not None else ""
    return (head + table + f'<div class="pictures">{"".join(pictures)}</div>{closeup}'
            "</article>")


def quality_section(results: Sequence[ImageResult], backends: Sequence[str],
                    sort_key: str = summary.DEFAULT_SORT) -> str:
    means = {b: summary.mean_scores(results, b) for b in backends}
    parts = ['<section id="quality"><h2>Quality</h2>', _means_table(means, "backend"),
             _legend()]
    for tag in summary.tags_of(results):
        parts.append(f"<h3>By {escape(tag)}</h3>")
        rows = {f"{value} · {b}": m for b in backends
                for value, m in summary.group_means(results, b, tag).items()}
        parts.append(_means_table(rows, f"{tag} · backend", mark_best=False))
    metric, _, region = sort_key.partition("_")
    label = f"{METRICS[metric].label} ({region})"
    parts.append(f"<h2>Images, worst first</h2><p class=\"legend\">Ordered by the worst "
                 f"backend's {escape(label)}.</p>")
    for rank, result in enumerate(summary.worst_first(results, backends, sort_key), start=1):
        parts.append(_image_article(rank, result, backends))
    parts.append("</section>")
    return "".join(parts)


def speed_section(results: Sequence[BenchResult]) -> str:
    labels = [f"{r.backend} {r.size.label} batch {r.batch}, "
              f"{r.settings['threads'] or 'auto'} threads" for r in results]
    rows = []
    for label, r in zip(labels, results, strict=True):
        stages = "".join(f"<td>{s.p50_ms:.0f} / {s.p95_ms:.0f}</td>" if s else
                         '<td title="not measured (--no-probe)">off</td>'
                         for s in r.stages.values())
        gpu = f"{r.peak_gpu_mb:.0f}" if r.peak_gpu_mb is not None else "-"
        rows.append(f"<tr><td>{escape(label)}</td><td>{escape(r.device)}</td>"
                    f"<td>{escape(r.probe_model or '-')}</td>{stages}"
                    f"<td>{r.model_ips:.3f}</td><td>{r.sequential_ips:.3f}</td>"
                    f"<td>{r.pipeline_ips:.3f}</td><td>{r.ratio:.2f}</td>"
                    f"<td>{r.peak_rss_mb:.0f}</td><td>{gpu}</td></tr>")
    head = "".join(f"<th>{s} p50 / p95 ms</th>" for s in STAGES)
    table = (f"<table><tr><th>backend · size</th><th>device</th><th>probe model</th>{head}"
             "<th>model img/s</th>"
             "<th>sequential img/s</th><th>pipeline img/s</th><th>pipeline / model</th>"
             f"<th>peak RSS MiB</th><th>peak GPU MiB</th></tr>{''.join(rows)}</table>")
    throughput = grouped_bars("Throughput", labels, [
        Series("model alone", [r.model_ips for r in results]),
        Series("sequential pipeline", [r.sequential_ips for r in results]),
        Series("staged pipeline", [r.pipeline_ips for r in results]),
    ], "images/s")
    stage_plot = stacked_bars("Latency per stage, median", labels, [
        Series(name, [r.stages[name].p50_ms for r in results])  # type: ignore[union-attr]
        for name in STAGES if all(r.stages[name] for r in results)
    ], "ms")
    notes = "".join(f"<li><b>{name}</b>: {escape(note)}</li>" for name, note in STAGE_NOTES.items())
    return (f'<section id="speed"><h2>Speed</h2>{table}<div class="legend"><p>Stage latencies '
            "are from the sequential run, the probe's from a pass of its own. Throughputs are "
            "medians over the rounds, measured in one run; they matte with the backend alone "
            f"(no probe).</p><ul>{notes}</ul></div>{throughput}{stage_plot}</section>")


def render(*, results: Sequence[ImageResult] = (), backends: Sequence[str] = (),
           devices: dict[str, str] | None = None, bench: Sequence[BenchResult] = (),
           sort_key: str = summary.DEFAULT_SORT) -> str:
    devices_text = ", ".join(f"{k} on {v}" for k, v in (devices or {}).items())
    body = [f"<h1>mattectl: quality and speed</h1><p class=\"legend\">Generated "
            f"{datetime.now().isoformat(timespec='seconds')}"
            f"{' · ' + escape(devices_text) if devices_text else ''}</p>"]
    if results:
        body.append(quality_section(results, backends, sort_key))
    if bench:
        body.append(speed_section(bench))
    body.append('<footer><p id="image-status" class="legend">pictures not checked '
                "(scripts are off)</p></footer>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mattectl '
            f"report</title><style>{STYLE}</style></head><body>{''.join(body)}"
            f"<script>{SCRIPT}</script></body></html>")


def write_report(path: Path, page: str) -> Path:
    """Write a rendered page atomically (a reader never sees half a report)."""
    write_file(path, page.encode("utf-8"), "overwrite")
    return path
