"""The geometry of the line charts pages draw as inline SVG (no script, no third party):
round axis ticks, and the seat usage chart the tenant console and the back office both show.
Each page keeps its table under the chart; this module only computes coordinates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from billing.seats import SeatDay
from core.l10n import format_day


def ticks(top: int) -> list[int]:
    """Round values from 0 to at least `top`, at most five of them: steps of 1, 2, 5, 10…"""
    nice, k, step = (1, 2, 5), 0, 1
    while math.ceil(top / step) > 4:
        k += 1
        step = nice[k % 3] * 10 ** (k // 3)
    return list(range(0, step * max(math.ceil(top / step), 1) + 1, step))


# Geometry of the usage chart (SVG user units), like the campaign page's progress chart.
CHART_W, CHART_H = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 36


@dataclass(frozen=True)
class UsageChart:
    """Seats used by the end of each day as an SVG polyline, the capacity as a level line,
    axis ticks, and the days that counted new seats (the table's rows)."""

    width: int
    height: int
    used_line: str
    capacity_y: float
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    baseline: float
    plot_left: int
    plot_right: int
    first: str
    last: str
    days: list[tuple[str, SeatDay]]


def usage_chart(days: list[SeatDay], capacity: int, locale: str) -> UsageChart | None:
    """The chart of `days` against `capacity`; None when the period has no day yet."""
    if not days:
        return None
    marks = ticks(max(days[-1].used, capacity))
    y_max = max(marks[-1], 1)
    plot_w, plot_h = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + (plot_w * i / span if len(days) > 1 else plot_w / 2), 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - plot_h * value / y_max, 1)

    labels = [format_day(day.day, locale, width="short") for day in days]
    points = [(x(i), y(day.used)) for i, day in enumerate(days)]
    if len(points) == 1:  # one day: a flat segment across the plot, not an invisible dot
        points = [(float(LEFT), points[0][1]), (float(CHART_W - RIGHT), points[0][1])]
    picks = sorted({0, len(days) // 2, len(days) - 1})
    return UsageChart(
        width=CHART_W,
        height=CHART_H,
        used_line=" ".join(f"{px},{py}" for px, py in points),
        capacity_y=y(capacity),
        y_ticks=[(y(t), t) for t in marks],
        x_ticks=[(x(i), labels[i]) for i in picks],
        baseline=y(0),
        plot_left=LEFT,
        plot_right=CHART_W - RIGHT,
        first=format_day(days[0].day, locale, width="long"),
        last=format_day(days[-1].day, locale, width="long"),
        days=[(label, day) for label, day in zip(labels, days, strict=True) if day.consumed],
    )
