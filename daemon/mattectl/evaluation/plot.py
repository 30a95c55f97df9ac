"""Bar charts as inline SVG (no plotting library): the speed figures of the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]  # one per row label


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _frame(title: str, unit: str, series: Sequence[Series], width: int, height: int,
           left: int, top: int, step: int) -> list[str]:
    """The opening of a chart: the svg element, its title and a legend of the series."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
             f'font-size="12"><title>{escape(title)}</title>',
             f'<text x="4" y="16" font-weight="bold">{escape(title)} ({escape(unit)})</text>']
    for k, s in enumerate(series):
        x = left + k * step
        parts.append(f'<rect x="{x}" y="{top - 12}" width="10" height="10" '
                     f'fill="{PALETTE[k % len(PALETTE)]}"/>'
                     f'<text x="{x + 14}" y="{top - 3}">{escape(s.name)}</text>')
    return parts


def grouped_bars(title: str, labels: Sequence[str], series: Sequence[Series],
                 unit: str, width: int = 760) -> str:
    """Horizontal bars, one group per label and one bar per series, with values written."""
    bar, gap, left, top = 14, 10, 250, 34
    group = bar * len(series) + gap
    height = top + group * len(labels) + 24
    peak = max((v for s in series for v in s.values), default=1.0) or 1.0
    scale = (width - left - 70) / peak
    parts = _frame(title, unit, series, width, height, left, top, step=150)
    for i, label in enumerate(labels):
        y0 = top + 6 + i * group
        parts.append(f'<text x="{left - 6}" y="{y0 + group / 2 - 2}" '
                     f'text-anchor="end">{escape(label)}</text>')
        for k, s in enumerate(series):
            y, value = y0 + k * bar, s.values[i]
            parts.append(f'<rect x="{left}" y="{y}" width="{max(value * scale, 1):.1f}" '
                         f'height="{bar - 2}" fill="{PALETTE[k % len(PALETTE)]}"/>'
                         f'<text x="{left + value * scale + 4:.1f}" y="{y + bar - 4}">'
                         f'{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series],
                 unit: str, width: int = 760) -> str:
    """Horizontal bars, one per label, split into the series' shares (e.g. stage times)."""
    bar, left, top = 18, 250, 34
    height = top + (bar + 8) * len(labels) + 16
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    scale = (width - left - 70) / (max(totals, default=1.0) or 1.0)
    parts = _frame(title, unit, series, width, height, left, top, step=120)
    for i, label in enumerate(labels):
        y = top + 6 + i * (bar + 8)
        parts.append(f'<text x="{left - 6}" y="{y + bar - 5}" text-anchor="end">'
                     f'{escape(label)}</text>')
        x = float(left)
        for k, s in enumerate(series):
            w = s.values[i] * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(s.name)}: '
                         f'{_fmt(s.values[i])} {escape(unit)}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 5}">{_fmt(totals[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)
