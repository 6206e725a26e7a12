"""Inline SVG charts for the training report: line charts of the training curves and the confusion-matrix heat map.

Plain strings, no plotting library and no JavaScript, so a report opens offline in any browser.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
LABEL_CHARS = 18  # longer class names are cut with "…"; the full name is in the tooltip


@dataclass(frozen=True)
class Series:
    """One line of a chart; points whose y is not finite are left out (the line breaks there)."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    dashed: bool = False


def truncate(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1/2/2.5/5 × 10^k step giving about `target_ticks` ticks over `span`."""
    raw = span / max(target_ticks, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def ticks(lo: float, hi: float, step: float) -> list[float]:
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))]


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
    y_clamp: tuple[float | None, float | None] = (None, None),
    marker_x: float | None = None,
    marker_label: str = "",
    width: int = 520,
    height: int = 300,
) -> str:
    """An SVG line chart with axes, ticks, grid, a legend and a point tooltip per value."""
    left, right, top, bottom = 60, 16, 56, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys) if math.isfinite(x) and math.isfinite(y)]
    xs = [p[0] for p in points] or [1.0]
    ys = [p[1] for p in points] or [0.0]

    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    x_step = max(1.0, float(math.ceil(nice_step(x_hi - x_lo, 6))))  # epochs are whole numbers
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.08 or max(abs(y_hi) * 0.1, 0.05)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    y_step = nice_step(y_hi - y_lo, 5)
    y_lo, y_hi = math.floor(y_lo / y_step) * y_step, math.ceil(y_hi / y_step) * y_step
    if y_clamp[0] is not None:
        y_lo = max(y_lo, y_clamp[0])
    if y_clamp[1] is not None:
        y_hi = min(y_hi, y_clamp[1])

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" font-family="{escape(FONT)}">'),
        f'<text x="{left}" y="20" font-size="14" font-weight="600" fill="{INK}">{escape(title)}</text>',
    ]
    for y in ticks(y_lo, y_hi, y_step):
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 8}" y="{sy(y) + 4:.1f}" font-size="11" fill="{MUTED}" '
                   f'text-anchor="end">{escape(y_format(y))}</text>')
    for x in ticks(x_lo, x_hi, x_step):
        out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 5}" '
                   f'stroke="{MUTED}"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{top + plot_h + 18}" font-size="11" fill="{MUTED}" '
                   f'text-anchor="middle">{_fmt(x)}</text>')
    out.append(f'<path d="M{left},{top}V{top + plot_h}H{left + plot_w}" fill="none" stroke="{MUTED}"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" fill="{MUTED}" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14,{top + plot_h / 2:.1f}) rotate(-90)" font-size="12" fill="{MUTED}" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    if marker_x is not None and x_lo <= marker_x <= x_hi:
        mx = sx(marker_x)
        out.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{MUTED}" '
                   'stroke-dasharray="2 3"/>')
        out.append(f'<text x="{mx + 4:.1f}" y="{top + 11}" font-size="11" fill="{MUTED}">{escape(marker_label)}</text>')

    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for segment in _finite_segments(s.xs, s.ys):
            path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(segment))
            out.append(f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        for x, y in zip(s.xs, s.ys):
            if math.isfinite(x) and math.isfinite(y):
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.color}">'
                           f'<title>{escape(s.name)}, {escape(x_label)} {_fmt(x)}: {escape(y_format(y))}</title>'
                           '</circle>')

    legend_x = left
    for s in series:  # a row under the title: short line sample, then the name
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="38" y2="38" stroke="{s.color}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{legend_x + 28}" y="42" font-size="12" fill="{INK}">{escape(s.name)}</text>')
        legend_x += 40 + 7 * len(s.name)
    out.append("</svg>")
    return "\n".join(out)


def _finite_segments(xs: Sequence[float], ys: Sequence[float]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if math.isfinite(x) and math.isfinite(y):
            segments[-1].append((x, y))
        elif segments[-1]:
            segments.append([])
    return [s for s in segments if s]


def _mix(start: tuple[int, int, int], end: tuple[int, int, int], t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(start, end))


_PALE, _CORRECT, _WRONG = (247, 249, 251), (22, 120, 92), (200, 62, 24)


def confusion_heatmap(labels: Sequence[str], confusion: Sequence[Sequence[int]]) -> str:
    """The confusion matrix as an SVG heat map: rows true class, columns predicted class.

    Shade grows with the row-normalised share (the fraction of the true class's images given each prediction):
    green on the diagonal (right), orange-red off it (mistakes). Every cell prints its count; tooltips give the
    full class names and shares.
    """
    n = len(labels)
    cell = min(44.0, max(18.0, 560.0 / max(n, 1)))
    label_w = 7 * min(max((len(label) for label in labels), default=1), LABEL_CHARS) + 12
    left = label_w + 28  # row labels plus the rotated "true class" title
    top = 10
    grid = cell * n
    bottom = label_w * 0.7 + 32  # column labels at -45° plus the "predicted class" title
    width, height = math.ceil(left + grid + 12), math.ceil(top + grid + bottom)
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" role="img" aria-label="confusion matrix" font-family="{escape(FONT)}">')
    ]
    for r, row in enumerate(confusion):
        total = sum(row)
        for c, count in enumerate(row):
            share = count / total if total else 0.0
            # Square root: a mistake made on 5 % of a class should still show, not fade into the background.
            colour = _mix(_PALE, _CORRECT if r == c else _WRONG, math.sqrt(share)) if count else "#f3f4f6"
            x, y = left + c * cell, top + r * cell
            tip = (f"true: {labels[r]} · predicted: {labels[c]}: {count} of {total} "
                   f"({share * 100:.1f} %)")
            digits = len(str(count))
            size = min(13.0, cell * 0.4, (cell - 3) / (0.62 * digits))
            ink = "#ffffff" if share > 0.45 else (INK if count else "#b0b7c0")
            out.append(
                f'<g><title>{escape(tip)}</title>'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" fill="{colour}" '
                f'stroke="#ffffff" stroke-width="1"/>'
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + size * 0.35:.1f}" font-size="{size:.1f}" '
                f'fill="{ink}" text-anchor="middle">{count}</text></g>'
            )
    for i, label in enumerate(labels):
        name, short = escape(label), escape(truncate(label))
        cy = top + i * cell + cell / 2
        out.append(f'<text x="{left - 6}" y="{cy + 4:.1f}" font-size="12" fill="{INK}" text-anchor="end">'
                   f'<title>{name}</title>{short}</text>')
        cx, ly = left + i * cell + cell / 2, top + grid + 10
        out.append(f'<text transform="translate({cx + 4:.1f},{ly:.1f}) rotate(-45)" font-size="12" fill="{INK}" '
                   f'text-anchor="end"><title>{name}</title>{short}</text>')
    out.append(f'<text transform="translate(12,{top + grid / 2:.1f}) rotate(-90)" font-size="12" fill="{MUTED}" '
               'text-anchor="middle">true class</text>')
    out.append(f'<text x="{left + grid / 2:.1f}" y="{height - 8}" font-size="12" fill="{MUTED}" '
               'text-anchor="middle">predicted class</text>')
    out.append("</svg>")
    return "\n".join(out)
