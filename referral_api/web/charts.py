"""Server-side SVG charts for the audit dashboard.

Pure functions: data in, SVG markup (a ``str``) out; no Flask, no database. Every chart carries
``<title>`` and ``<desc>`` (announced by screen readers through ``aria-labelledby``) and every
bar its own ``<title>``; the pages also print the same numbers as a table, so the SVG is never
the only way to read them. All text is escaped here, so callers may mark the result safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
AXIS_COLOUR = "#57606a"
GRID_COLOUR = "#d0d7de"
TEXT_COLOUR = "#1f2328"
MUTED_COLOUR = "#57606a"


@dataclass(frozen=True)
class Series:
    """One stacked category: its key in the data, its legend label and its fill colour."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class StackedBar:
    """One bar of a stacked chart: its axis label, a longer label for tooltips, and counts."""

    label: str
    long_label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Sum of the bar's segments."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class RateRow:
    """One row of a rate chart: a label, a rate in [0, 1] (None = nothing to rate), a note."""

    label: str
    rate: float | None
    note: str


def nice_ceiling(value: int) -> tuple[int, int]:
    """Round ``value`` up to a readable axis maximum; return (maximum, tick step).

    The step is 1, 2 or 5 times a power of ten, chosen so the axis has at most five ticks.
    """
    if value <= 0:
        return 1, 1
    for exponent in range(0, 12):
        for base in (1, 2, 5):
            step = base * 10**exponent
            if math.ceil(value / step) <= 5:
                return step * math.ceil(value / step), step
    return value, value  # unreachable for realistic counts; keeps the function total


def _open_svg(width: int, height: int, chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family="{escape(FONT)}" font-size="12">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def stacked_bar_chart(
    bars: Sequence[StackedBar],
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    desc: str,
    width: int = 720,
    plot_height: int = 220,
) -> str:
    """Render vertical stacked bars (one per entry of ``bars``) with a y axis and a legend.

    Segments are stacked bottom-up in ``series`` order; a count whose key is not in ``series``
    is ignored. With no bars, the chart says so in its plot area.
    """
    left, right, top = 44, 12, 12
    axis_label_height = 34
    legend_rows = 1 + (len(series) - 1) // 4 if series else 0
    height = top + plot_height + axis_label_height + legend_rows * 20 + 8
    plot_width = width - left - right
    out = _open_svg(width, height, chart_id, title, desc)

    y_max, step = nice_ceiling(max((bar.total for bar in bars), default=0))
    baseline = top + plot_height

    def y_of(count: float) -> float:
        return baseline - count * plot_height / y_max

    # Horizontal grid lines with their values: the y axis.
    for tick in range(0, y_max + 1, step):
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED_COLOUR}">{tick}</text>'
        )

    if not bars:
        out.append(
            f'<text x="{left + plot_width / 2:.1f}" y="{top + plot_height / 2:.1f}" '
            f'text-anchor="middle" fill="{MUTED_COLOUR}">No decisions match these filters</text>'
        )
    else:
        band = plot_width / len(bars)
        bar_width = max(2.0, min(48.0, band * 0.7))
        # Label at most ~12 bars on the axis so the labels never overlap.
        label_every = max(1, math.ceil(len(bars) / 12))
        for index, bar in enumerate(bars):
            x = left + index * band + (band - bar_width) / 2
            running = 0
            for item in series:
                count = bar.counts.get(item.key, 0)
                if count <= 0:
                    continue
                y_top = y_of(running + count)
                seg_height = y_of(running) - y_top
                out.append(
                    f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar_width:.1f}" '
                    f'height="{seg_height:.1f}" fill="{escape(item.colour)}" '
                    f'stroke="#ffffff" stroke-width="0.5">'
                    f"<title>{escape(bar.long_label)}: {escape(item.label)} {count}</title></rect>"
                )
                running += count
            if index % label_every == 0:
                out.append(
                    f'<text x="{x + bar_width / 2:.1f}" y="{baseline + 16}" text-anchor="middle" '
                    f'fill="{TEXT_COLOUR}">{escape(bar.label)}</text>'
                )
    out.append(
        f'<line x1="{left}" y1="{baseline}" x2="{width - right}" y2="{baseline}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )

    legend_top = baseline + axis_label_height
    for index, item in enumerate(series):
        row, column = divmod(index, 4)
        x = left + column * (plot_width / 4)
        y = legend_top + row * 20
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{escape(item.colour)}"/>'
        )
        out.append(
            f'<text x="{x + 17:.1f}" y="{y}" fill="{TEXT_COLOUR}">{escape(item.label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def rate_bar_chart(
    rows: Sequence[RateRow],
    *,
    chart_id: str,
    title: str,
    desc: str,
    width: int = 720,
    label_width: int = 290,
    colour: str = "#8250df",
) -> str:
    """Render horizontal bars of rates in [0, 1], one row per entry, labelled with percentages.

    A row whose rate is None (nothing to rate) draws no bar and says so in words.
    """
    row_height, top, bottom = 24, 22, 8
    height = top + max(1, len(rows)) * row_height + bottom
    note_width = 150
    bar_left = label_width + 8
    bar_span = width - bar_left - note_width
    out = _open_svg(width, height, chart_id, title, desc)

    # Scale ticks at 0, 50 and 100 % along the top.
    for fraction in (0.0, 0.5, 1.0):
        x = bar_left + fraction * bar_span
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - bottom}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" '
            f'fill="{MUTED_COLOUR}">{int(fraction * 100)}%</text>'
        )

    if not rows:
        out.append(
            f'<text x="{bar_left + bar_span / 2:.1f}" y="{top + 16}" text-anchor="middle" '
            f'fill="{MUTED_COLOUR}">No decisions match these filters</text>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_height
        middle = y + row_height / 2 + 4
        out.append(
            f'<text x="{label_width}" y="{middle:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{escape(row.label)}</text>'
        )
        if row.rate is None:
            text = f"no feedback · {row.note}"
            out.append(
                f'<text x="{bar_left + 4}" y="{middle:.1f}" fill="{MUTED_COLOUR}">'
                f"{escape(text)}<title>{escape(row.label)}: {escape(text)}</title></text>"
            )
            continue
        rate = min(1.0, max(0.0, row.rate))
        bar_width = max(1.0, rate * bar_span) if rate > 0 else 0.0
        percent = f"{rate * 100:.0f}%"
        out.append(
            f'<rect x="{bar_left}" y="{y + 4}" width="{bar_width:.1f}" height="{row_height - 8}" '
            f'fill="{escape(colour)}"><title>{escape(row.label)}: {percent} overridden, '
            f"{escape(row.note)}</title></rect>"
        )
        out.append(
            f'<text x="{bar_left + bar_width + 6:.1f}" y="{middle:.1f}" fill="{TEXT_COLOUR}">'
            f"{percent} · {escape(row.note)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
