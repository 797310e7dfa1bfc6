"""Dependency-free inline SVG charts for the HTML report.

The Kubeflow UI shows HTML artifacts in a sandboxed frame that drops scripts and does not render
base64 images, so every chart is plain SVG markup built here. Each helper returns either one
``<svg class="chart">`` element or, when there is nothing to draw, a short "no data" note: an empty
set of axes reads as "the model did nothing", which is a different claim.

Every string that may come from a model or a user is escaped, including inside ``<text>`` and
``<title>``: the report is opened in a browser, so a hostile title must stay text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies and in greyscale
# print, where dashes carry the train/eval distinction.
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#6B7280"

WIDTH = 560
HEIGHT = 300
FONT_SIZE = 12
# Average glyph width at FONT_SIZE, used only to lay out legends without measuring text.
_CHAR_W = 6.6
# Markers (with hover tooltips) help short series, where a polyline alone hides single points;
# on long series they only add clutter and bytes.
_MAX_MARKERS = 40


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``points`` are ``(x, y)`` pairs; non-finite pairs are dropped."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = BLUE
    dashed: bool = False


@dataclass(frozen=True)
class BarSeries:
    """One colour of a grouped bar chart: ``values`` align with the chart's categories."""

    name: str
    values: Sequence[float | None]
    color: str = BLUE


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def finite(value: object) -> float | None:
    """The value as a float when it is a real, finite number; bools are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt_number(value: float) -> str:
    """Compact tick/label text: ``0.30000000000000004`` -> ``0.3``, ``-0.0`` -> ``0``."""
    text = f"{round(value, 9) + 0.0:.6g}"
    return "0" if text == "-0" else text


def no_data(title: str) -> str:
    return f'<p class="no-data" role="note">{esc(title)}: no data</p>'


def nice_ticks(lo: float, hi: float, target: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (the first and last tick enclose the range)."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(target, 1)
    if not math.isfinite(raw) or raw <= 0:
        # Ranges near the float limits: two ticks at the ends still give a usable frame.
        return [lo, hi]
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            step = multiple * magnitude
            break
    if integer:
        step = max(1.0, round(step))
    start = math.floor(lo / step + 1e-9)
    end = math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(start, end + 1)]


class _Frame:
    """Plot area geometry and the linear maps from data to SVG coordinates."""

    def __init__(self, x_domain: tuple[float, float], y_domain: tuple[float, float], top: float):
        self.left, self.right, self.top, self.bottom = 60.0, 16.0, top, 48.0
        self.width = WIDTH - self.left - self.right
        self.height = HEIGHT - self.top - self.bottom
        self.x0, self.x1 = x_domain
        self.y0, self.y1 = y_domain

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * self.width

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.top + self.height - (y - self.y0) / span * self.height

    @property
    def base_y(self) -> float:
        return self.top + self.height


def _c(value: float) -> str:
    return f"{value:.1f}"


def _open_svg(title: str, description: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{esc(title)}</title>",
        f"<desc>{esc(description)}</desc>",
    ]


def _legend_rows(names: Sequence[str]) -> list[list[int]]:
    """Indices of legend entries per row, wrapping when a row would overflow the chart width."""
    rows: list[list[int]] = [[]]
    used = 0.0
    available = WIDTH - 60 - 16
    for index, name in enumerate(names):
        need = 28 + len(name) * _CHAR_W + 16
        if rows[-1] and used + need > available:
            rows.append([])
            used = 0.0
        rows[-1].append(index)
        used += need
    return rows


def _legend(entries: Sequence[tuple[str, str, str]]) -> tuple[list[str], float]:
    """Legend markup for ``(name, colour, kind)`` entries and the top margin it needs.

    ``kind`` is ``"line"``, ``"dashed"`` or ``"box"``.
    """
    parts = ['<g class="legend">']
    rows = _legend_rows([name for name, _, _ in entries])
    for row_number, row in enumerate(rows):
        y = 14 + row_number * 17
        x = 60.0
        for index in row:
            name, color, kind = entries[index]
            if kind == "box":
                parts.append(
                    f'<rect x="{_c(x)}" y="{_c(y - 9)}" width="18" height="10" '
                    f'fill="{esc(color)}"/>'
                )
            else:
                dash = ' stroke-dasharray="5 3"' if kind == "dashed" else ""
                parts.append(
                    f'<line x1="{_c(x)}" y1="{_c(y - 4)}" x2="{_c(x + 18)}" y2="{_c(y - 4)}" '
                    f'stroke="{esc(color)}" stroke-width="2.5"{dash}/>'
                )
            parts.append(f'<text x="{_c(x + 24)}" y="{_c(y)}">{esc(name)}</text>')
            x += 28 + len(name) * _CHAR_W + 16
    parts.append("</g>")
    return parts, 14 + len(rows) * 17 + 8


def _y_axis(
    frame: _Frame, ticks: Iterable[float], label: str, fmt: Callable[[float], str]
) -> list[str]:
    parts = ['<g class="axis y-axis">']
    for tick in ticks:
        y = frame.sy(tick)
        parts.append(
            f'<line class="grid" x1="{_c(frame.left)}" y1="{_c(y)}" '
            f'x2="{_c(frame.left + frame.width)}" y2="{_c(y)}"/>'
        )
        parts.append(
            f'<text x="{_c(frame.left - 6)}" y="{_c(y + 4)}" text-anchor="end">{esc(fmt(tick))}'
            "</text>"
        )
    mid = frame.top + frame.height / 2
    parts.append(
        f'<text class="axis-label" x="14" y="{_c(mid)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_c(mid)})">{esc(label)}</text>'
    )
    parts.append("</g>")
    return parts


def _x_axis_line(frame: _Frame, label: str) -> list[str]:
    return [
        f'<line class="axis-line" x1="{_c(frame.left)}" y1="{_c(frame.base_y)}" '
        f'x2="{_c(frame.left + frame.width)}" y2="{_c(frame.base_y)}"/>',
        f'<text class="axis-label" x="{_c(frame.left + frame.width / 2)}" y="{HEIGHT - 8}" '
        f'text-anchor="middle">{esc(label)}</text>',
    ]


def _clean_points(points: Iterable[tuple[object, object]]) -> list[tuple[float, float]]:
    kept = []
    for point in points:
        try:
            x, y = point
        except (TypeError, ValueError):
            continue
        fx, fy = finite(x), finite(y)
        if fx is not None and fy is not None:
            kept.append((fx, fy))
    return sorted(kept, key=lambda p: p[0])


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_include: Sequence[float] = (),
    integer_x: bool = True,
    y_format: Callable[[float], str] = fmt_number,
) -> str:
    """Several series on shared axes; ``y_include`` forces values into the y range (e.g. 0 and 1
    for accuracies, so a flat 1.0 does not fill the plot)."""
    cleaned = [(s, _clean_points(s.points)) for s in series]
    cleaned = [(s, pts) for s, pts in cleaned if pts]
    if not cleaned:
        return no_data(title)

    xs = [x for _, pts in cleaned for x, _ in pts]
    ys = [y for _, pts in cleaned for _, y in pts]
    ys_for_range = ys + [v for v in (finite(v) for v in y_include) if v is not None]
    y_ticks = nice_ticks(min(ys_for_range), max(ys_for_range))
    x_lo, x_hi = min(xs), max(xs)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, 6, integer=integer_x) if x_lo <= t <= x_hi]

    legend, top = _legend([(s.name, s.color, "dashed" if s.dashed else "line") for s, _ in cleaned])
    frame = _Frame((x_lo, x_hi), (y_ticks[0], y_ticks[-1]), top)
    summary = "; ".join(f"{s.name}: {len(pts)} points" for s, pts in cleaned)
    parts = _open_svg(title, f"Line chart of {y_label} against {x_label}. {summary}.")
    parts += legend
    parts += _y_axis(frame, y_ticks, y_label, y_format)
    parts.append('<g class="axis x-axis">')
    for tick in x_ticks:
        x = frame.sx(tick)
        parts.append(
            f'<line class="tick" x1="{_c(x)}" y1="{_c(frame.base_y)}" x2="{_c(x)}" '
            f'y2="{_c(frame.base_y + 4)}"/>'
        )
        parts.append(
            f'<text x="{_c(x)}" y="{_c(frame.base_y + 17)}" text-anchor="middle">'
            f"{esc(fmt_number(tick))}</text>"
        )
    parts += _x_axis_line(frame, x_label)
    parts.append("</g>")

    for s, pts in cleaned:
        coords = " ".join(f"{_c(frame.sx(x))},{_c(frame.sy(y))}" for x, y in pts)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<g class="series" data-series="{esc(s.name)}">')
        parts.append(
            f'<polyline data-series="{esc(s.name)}" fill="none" stroke="{esc(s.color)}" '
            f'stroke-width="2" stroke-linejoin="round"{dash} points="{coords}"/>'
        )
        if len(pts) <= _MAX_MARKERS:
            for x, y in pts:
                parts.append(
                    f'<circle cx="{_c(frame.sx(x))}" cy="{_c(frame.sy(y))}" r="2.8" '
                    f'fill="{esc(s.color)}"><title>{esc(s.name)}, {esc(x_label)} '
                    f"{esc(fmt_number(x))}: {esc(y_format(y))}</title></circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[BarSeries],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_include: Sequence[float] = (0.0,),
    value_format: Callable[[float], str] = fmt_number,
) -> str:
    """Grouped bars: one group per category, one bar per series; missing values leave a gap."""
    values = [[finite(v) for v in s.values] for s in series]
    present = [v for row in values for v in row if v is not None]
    if not categories or not series or not present:
        return no_data(title)

    extra = [v for v in (finite(v) for v in y_include) if v is not None]
    ticks = nice_ticks(min(present + extra), max(present + extra))
    legend, top = _legend([(s.name, s.color, "box") for s in series])
    # Value labels sit above the bars, so leave them room under the legend.
    frame = _Frame((0.0, float(len(categories))), (ticks[0], ticks[-1]), top + 12)
    parts = _open_svg(title, f"Grouped bar chart of {y_label} by {x_label}.")
    parts += legend
    parts += _y_axis(frame, ticks, y_label, fmt_number)

    band = frame.width / len(categories)
    group_w = band * 0.7
    bar_w = group_w / len(series)
    zero_y = frame.sy(min(max(0.0, ticks[0]), ticks[-1]))
    parts.append('<g class="bars">')
    for ci, category in enumerate(categories):
        group_x = frame.left + ci * band + (band - group_w) / 2
        for si, s in enumerate(series):
            value = values[si][ci] if ci < len(values[si]) else None
            if value is None:
                continue
            x = group_x + si * bar_w + 1
            y = frame.sy(value)
            top_y, height = min(y, zero_y), abs(zero_y - y)
            parts.append(
                f'<rect class="bar" data-series="{esc(s.name)}" data-category="{esc(category)}" '
                f'x="{_c(x)}" y="{_c(top_y)}" width="{_c(bar_w - 2)}" height="{_c(height)}" '
                f'fill="{esc(s.color)}"><title>{esc(s.name)}, {esc(category)}: '
                f"{esc(value_format(value))}</title></rect>"
            )
            label_y = top_y - 4 if value >= 0 else top_y + height + 13
            parts.append(
                f'<text class="value" x="{_c(x + (bar_w - 2) / 2)}" y="{_c(label_y)}" '
                f'text-anchor="middle">{esc(value_format(value))}</text>'
            )
        parts.append(
            f'<text x="{_c(frame.left + ci * band + band / 2)}" y="{_c(frame.base_y + 17)}" '
            f'text-anchor="middle">{esc(category)}</text>'
        )
    parts.append("</g>")
    parts += _x_axis_line(frame, x_label)
    parts.append("</svg>")
    return "\n".join(parts)


def _bin_width(lo: float, hi: float, target: int = 12) -> float:
    raw = max((hi - lo) / target, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * magnitude:
            return float(multiple * magnitude)
    return float(10 * magnitude)


def histogram_pair(
    first: Sequence[float],
    second: Sequence[float],
    *,
    names: tuple[str, str] = ("base", "tuned"),
    colors: tuple[str, str] = (BLUE, ORANGE),
    title: str,
    x_label: str,
    y_label: str = "count",
    bin_width: float | None = None,
) -> str:
    """Two distributions over shared bins, drawn side by side in each bin so neither hides the
    other. Bins are half-open ``[edge, edge + width)`` and sized for whole-number data."""
    samples = [[v for v in (finite(x) for x in data) if v is not None] for data in (first, second)]
    every = samples[0] + samples[1]
    if not every:
        return no_data(title)

    width = bin_width if bin_width and bin_width > 0 else _bin_width(min(every), max(every))
    lo = math.floor(min(every) / width) * width
    n_bins = int(math.floor((max(every) - lo) / width)) + 1
    counts = [[0] * n_bins for _ in samples]
    for which, data in enumerate(samples):
        for v in data:
            counts[which][min(int((v - lo) // width), n_bins - 1)] += 1
    hi = lo + n_bins * width

    entries = []
    for name, color, data in zip(names, colors, samples, strict=True):
        mean = f", mean {fmt_number(round(sum(data) / len(data), 1))}" if data else ""
        entries.append((f"{name} (n={len(data)}{mean})", color, "box"))
    legend, top = _legend(entries)
    y_ticks = nice_ticks(0, max(max(row) for row in counts), 5, integer=True)
    frame = _Frame((lo, hi), (y_ticks[0], y_ticks[-1]), top)
    parts = _open_svg(title, f"Histograms of {x_label} for {names[0]} and {names[1]}.")
    parts += legend
    parts += _y_axis(frame, y_ticks, y_label, fmt_number)

    # Label every k-th edge so the labels never collide, however many bins there are.
    stride = max(1, math.ceil((n_bins + 1) / 12))
    parts.append('<g class="axis x-axis">')
    for i in range(0, n_bins + 1, stride):
        x = frame.sx(lo + i * width)
        parts.append(
            f'<line class="tick" x1="{_c(x)}" y1="{_c(frame.base_y)}" x2="{_c(x)}" '
            f'y2="{_c(frame.base_y + 4)}"/>'
        )
        parts.append(
            f'<text x="{_c(x)}" y="{_c(frame.base_y + 17)}" text-anchor="middle">'
            f"{esc(fmt_number(lo + i * width))}</text>"
        )
    parts += _x_axis_line(frame, x_label)
    parts.append("</g>")

    bin_px = frame.width / n_bins
    half = (bin_px - 2) / 2
    parts.append('<g class="bars">')
    for which, (name, color) in enumerate(zip(names, colors, strict=True)):
        for i, count in enumerate(counts[which]):
            if not count:
                continue
            start = lo + i * width
            last = start + width - 1
            span = fmt_number(start) if width == 1 else f"{fmt_number(start)}–{fmt_number(last)}"
            x = frame.sx(start) + 1 + which * half
            y = frame.sy(count)
            parts.append(
                f'<rect class="bar" data-series="{esc(name)}" data-count="{count}" '
                f'x="{_c(x)}" y="{_c(y)}" width="{_c(max(half - 0.5, 0.5))}" '
                f'height="{_c(frame.base_y - y)}" fill="{esc(color)}">'
                f"<title>{esc(name)}, {esc(span)}: {count}</title></rect>"
            )
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis; cut before escaping, so an
    entity is never split."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(1, limit - 1)].rstrip() + "…"


def verdict_rows(
    rows: Sequence[tuple[str, Sequence[int]]],
    segments: Sequence[tuple[str, str]],
    *,
    title: str,
    x_label: str = "share of comparisons",
    label_chars: int = 34,
    width: int = 760,
) -> str:
    """One horizontal 100% stacked bar per row: ``rows`` are ``(label, counts)`` with one count
    per ``(name, colour)`` segment. Shares, not counts, so ideas with a failed comparison or two
    stay comparable; the counts are in each segment's tooltip and at the end of the bar. A
    dashed line marks 50%. The chart grows with the number of rows."""
    kept = [
        (str(label), [max(0, int(c)) for c in counts])
        for label, counts in rows
        if len(counts) == len(segments) and sum(max(0, int(c)) for c in counts) > 0
    ]
    if not kept or not segments:
        return no_data(title)

    legend, top = _legend([(name, color, "box") for name, color in segments])
    row_h, bar_h = 22.0, 14.0
    left = 12 + label_chars * _CHAR_W
    right = 56.0
    plot_w = width - left - right
    height = top + len(kept) * row_h + 44
    base_y = top + len(kept) * row_h

    def sx(share: float) -> float:
        return left + share * plot_w

    parts = [
        f'<svg class="chart verdict-rows" viewBox="0 0 {width} {_c(height)}" '
        f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{esc(title)}</title>",
        f"<desc>{esc(f'Stacked bars, one per row ({len(kept)} rows), of the {x_label}.')}</desc>",
    ]
    # The legend is laid out for the standard width; start it at the plot's left edge.
    parts.append(f'<g transform="translate({_c(left - 60)} 0)">')
    parts += legend
    parts.append("</g>")
    parts.append('<g class="axis x-axis">')
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = sx(tick)
        parts.append(
            f'<line class="grid" x1="{_c(x)}" y1="{_c(top)}" x2="{_c(x)}" y2="{_c(base_y)}"/>'
        )
        parts.append(
            f'<text x="{_c(x)}" y="{_c(base_y + 16)}" text-anchor="middle">{tick:.0%}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{_c(left + plot_w / 2)}" y="{_c(height - 8)}" '
        f'text-anchor="middle">{esc(x_label)}</text>'
    )
    parts.append("</g>")

    parts.append('<g class="bars">')
    for index, (label, counts) in enumerate(kept):
        y = top + index * row_h + (row_h - bar_h) / 2
        total = sum(counts)
        parts.append(f'<g class="row" data-label="{esc(label)}">')
        parts.append(
            f'<text x="{_c(left - 8)}" y="{_c(y + bar_h - 3)}" text-anchor="end">'
            f"<title>{esc(label)}</title>{esc(shorten(label, label_chars))}</text>"
        )
        start = 0.0
        for (name, color), count in zip(segments, counts, strict=True):
            if not count:
                continue
            share = count / total
            parts.append(
                f'<rect class="bar" data-series="{esc(name)}" data-count="{count}" '
                f'x="{_c(sx(start))}" y="{_c(y)}" width="{_c(share * plot_w)}" '
                f'height="{_c(bar_h)}" fill="{esc(color)}"><title>{esc(label)}: {esc(name)} '
                f"{count} of {total}</title></rect>"
            )
            start += share
        parts.append(
            f'<text class="value" x="{_c(left + plot_w + 6)}" y="{_c(y + bar_h - 3)}">'
            f"n={total}</text>"
        )
        parts.append("</g>")
    parts.append("</g>")
    parts.append(
        f'<line class="midline" x1="{_c(sx(0.5))}" y1="{_c(top - 4)}" x2="{_c(sx(0.5))}" '
        f'y2="{_c(base_y)}" stroke="#1f2328" stroke-width="1.2" stroke-dasharray="4 3"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
