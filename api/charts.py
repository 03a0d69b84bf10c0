"""Small charts drawn on the server as SVG: no JavaScript, no CDN, and readable by a screen
reader. Each chart has a title and a description (``role="img"``, ``aria-labelledby``), and
the page always shows the same figures in a table beside it, so the chart only adds the shape.

Colours are the GOV.UK palette's, distinguishable in greyscale by their order and each series
also has its own marker, so colour is never the only cue (WCAG 1.4.1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# GOV.UK colours (blue, orange, green, purple, red, turquoise, brown, pink), dark enough for
# 3:1 against white (WCAG 1.4.11).
PALETTE = ("#1d70b8", "#b35800", "#00703c", "#4c2c92", "#d4351c", "#28a197", "#b58840",
           "#d53880")
MARKERS = ("circle", "square", "diamond", "triangle")
_ids = itertools.count(1)


@dataclass
class Series:
    name: str
    values: list[float | None]  # None: no figure for that point (nothing counted)


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if kind == "diamond":
        return (f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}'
                f'L{x - 5:.1f} {y:.1f}Z" fill="{colour}"/>')
    if kind == "triangle":
        return (f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y + 4:.1f}L{x - 5:.1f} {y + 4:.1f}Z" '
                f'fill="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def percent_lines(title: str, description: str, labels: list[str], series: list[Series],
                  width: int = 640, height: int = 260) -> Markup:
    """A line chart of percentages (0 to 100) over ``labels`` (e.g. quarters)."""
    uid = next(_ids)
    # The key goes under the axis, in as many rows as it needs.
    key_rows, row, used = [], [], 0
    for k, s in enumerate(series):
        w = 24 + 7 * len(s.name)
        if row and used + w > width - 60:
            key_rows.append(row)
            row, used = [], 0
        row.append((k, s, used))
        used += w
    if row:
        key_rows.append(row)
    left, right, top = 44, 40, 16
    bottom = 36 + 20 * len(key_rows)
    height += 20 * max(0, len(key_rows) - 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(labels) - 1)

    def x(i: int) -> float:
        return left + (plot_w * i / n if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / 100)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ehc-chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="100%" '
             f'aria-labelledby="chart-{uid}-title chart-{uid}-desc">',
             f'<title id="chart-{uid}-title">{escape(title)}</title>',
             f'<desc id="chart-{uid}-desc">{escape(description)}</desc>']
    for v in (0, 25, 50, 75, 100):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#b1b4b6" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                     f'font-size="12" fill="#0b0c0c">{v}%</text>')
    step = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                         f'font-size="12" fill="#0b0c0c">{escape(label)}</text>')
    for k, s in enumerate(series):
        colour, marker = PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)]
        points = [(x(i), y(v)) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{'M' if j == 0 else 'L'}{px:.1f} {py:.1f}"
                            for j, (px, py) in enumerate(points))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        parts.extend(_marker(marker, px, py, colour) for px, py in points)
    for r, items in enumerate(key_rows):  # the key: each series' marker and name
        ky = height - bottom + 40 + 20 * r
        for k, s, offset in items:
            colour, marker = PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)]
            parts.append(_marker(marker, left + offset + 5, ky - 4, colour))
            parts.append(f'<text x="{left + offset + 14}" y="{ky}" font-size="12" '
                         f'fill="#0b0c0c">{escape(s.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def percent_bars(title: str, description: str, rows: list[tuple[str, float | None]],
                 width: int = 640) -> Markup:
    """Horizontal bars of percentages, one per row (a label and its figure)."""
    uid = next(_ids)
    bar_h, gap, label_w, top = 22, 10, 200, 8
    height = top + len(rows) * (bar_h + gap) + 8
    plot_w = width - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ehc-chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="100%" '
             f'aria-labelledby="chart-{uid}-title chart-{uid}-desc">',
             f'<title id="chart-{uid}-title">{escape(title)}</title>',
             f'<desc id="chart-{uid}-desc">{escape(description)}</desc>']
    for i, (label, value) in enumerate(rows):
        yy = top + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 8}" y="{yy + 16}" text-anchor="end" font-size="13" '
                     f'fill="#0b0c0c">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{yy}" width="{plot_w}" height="{bar_h}" '
                     f'fill="#f3f2f1"/>')
        if value is not None:
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{plot_w * value / 100:.1f}" '
                         f'height="{bar_h}" fill="{PALETTE[0]}"/>')
        text = "no figure" if value is None else f"{value:.0f}%"
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{yy + 16}" font-size="13" '
                     f'fill="#0b0c0c">{text}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
