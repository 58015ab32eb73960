"""Horizontal bar charts laid out on the server, for the console to draw as inline SVG: no script, no library."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

#: Widths of the label column, the plot and the value column, in SVG units (the SVG scales to its box).
LABEL_WIDTH: Final = 200
PLOT_WIDTH: Final = 420
VALUE_WIDTH: Final = 70
BAR_HEIGHT: Final = 14
BAR_GAP: Final = 3
ROW_GAP: Final = 12
#: What a missing value shows: an en dash.
NO_VALUE: Final = "\u2013"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its box, its series (a CSS class picks its colour) and the value written after it."""

    series: str
    x: float
    y: float
    width: float
    height: float
    text: str


@dataclass(frozen=True, slots=True)
class Row:
    """One group's label and its bars, one per series."""

    label: str
    label_y: float
    bars: list[Bar]


@dataclass(frozen=True, slots=True)
class BarChart:
    """A chart's size and rows, ready for the template; `series` in legend order."""

    width: int
    height: int
    label_width: int
    series: list[str]
    rows: list[Row]


def bar_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    scale_max: float | None = None,
    text: Callable[[float], str] = lambda v: f"{v:g}",
) -> BarChart:
    """Lay out one row of bars per label, one bar per series, scaled to `scale_max` (default: the largest value).

    A None value draws no bar and is written as a dash: a rate without a denominator is not a zero.
    """
    values = [v for column in series.values() for v in column if v is not None]
    top = scale_max if scale_max is not None else max(values, default=0.0)
    top = top if top > 0 else 1.0
    row_height = len(series) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP + ROW_GAP
    rows = []
    for i, label in enumerate(labels):
        y0 = ROW_GAP / 2 + i * row_height
        bars = []
        for j, (name, column) in enumerate(series.items()):
            value = column[i]
            width = 0.0 if value is None else PLOT_WIDTH * min(value, top) / top
            y = y0 + j * (BAR_HEIGHT + BAR_GAP)
            shown = NO_VALUE if value is None else text(value)
            bars.append(Bar(series=name, x=LABEL_WIDTH, y=y, width=width, height=BAR_HEIGHT, text=shown))
        middle = y0 + (row_height - ROW_GAP) / 2
        rows.append(Row(label=label, label_y=middle, bars=bars))
    return BarChart(
        width=LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH,
        height=max(int(len(labels) * row_height + ROW_GAP), 2 * ROW_GAP),
        label_width=LABEL_WIDTH,
        series=list(series),
        rows=rows,
    )


def percent(value: float) -> str:
    """A rate as a whole percentage."""
    return f"{value * 100:.0f}%"
