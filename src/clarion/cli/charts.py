"""Series charts for the terminal (sparklines, bar rows) and as an SVG file. Pure functions.

Hand-written on purpose: a report series is a few bar charts, which is ~80 lines of SVG text
and block characters. A plotting library (matplotlib, plotly) would add tens of megabytes and a
native toolchain to a server package for that; Rich (already a dependency) draws the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

_SPARKS = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉"


def sparkline(values: Sequence[int], top: int | None = None) -> str:
    """One character per value: ``▁`` for zero, ``▂`` to ``█`` up to ``top`` (default: the
    largest value; pass a shared one so that several lines compare)."""
    top = max(values, default=0) if top is None else top
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(_SPARKS[0] if v <= 0 else _SPARKS[max(1, min(7, round(v / top * 7)))]
                   for v in values)


def bar(value: int, top: int, width: int) -> str:
    """A horizontal bar of ``value`` on a scale where ``top`` fills ``width`` cells."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def svg_chart(*, title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]],
              width: int = 960, panel_height: int = 150) -> str:
    """Small multiples: one bar panel per series, sharing the x axis (bucket labels).

    Each panel has its own scale (its maximum is printed), so a small series such as clicks
    stays readable beside sends."""
    n = max(len(labels), 1)
    left, right, top_pad, gap = 70, 20, 40, 36
    plot_w = width - left - right
    step = plot_w / n
    bar_w = max(step * 0.8, 0.5)
    every = max(1, round(n / 12))  # about a dozen x labels
    height = top_pad + len(series) * (panel_height + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    colours = ("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2")
    for i, (name, values) in enumerate(series.items()):
        y0 = top_pad + i * (panel_height + gap) + 16
        base = y0 + panel_height
        peak = max(values, default=0)
        colour = colours[i % len(colours)]
        parts.append(f'<text x="{left}" y="{y0 - 4}" font-weight="bold" fill="{colour}">'
                     f'{escape(name)}</text>')
        parts.append(f'<text x="{left - 6}" y="{y0 + 10}" text-anchor="end">{peak}</text>')
        parts.append(f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>')
        parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" '
                     'stroke="#888"/>')
        for j, v in enumerate(values):
            if v <= 0 or peak <= 0:
                continue
            h = v / peak * panel_height
            parts.append(f'<rect x="{left + j * step:.2f}" y="{base - h:.2f}" '
                         f'width="{bar_w:.2f}" height="{h:.2f}" fill="{colour}">'
                         f'<title>{escape(labels[j] if j < len(labels) else "")}: {v}</title>'
                         '</rect>')
        if i == len(series) - 1:
            for j in range(0, len(labels), every):
                parts.append(f'<text x="{left + j * step:.2f}" y="{base + 16}">'
                             f'{escape(labels[j])}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
