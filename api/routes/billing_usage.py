"""The seat usage page of the tenant console, `/o/{slug}/billing/usage`: the current period's
seats (used, capacity, remaining, the overage policy), a chart of the seats used day by day
with the capacity, the same figures as a table, and the seat packs with their validity.

Delivery only: the figures come from `billing.seats.usage_report` (a fixed number of queries
whatever the number of learners); this module turns them into the chart's geometry. Admins
and owners only (`org:billing:read`); another organization's slug is a 404.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from babel.dates import format_date
from litestar import Request, get
from litestar.response import Template

from billing import seats
from billing.seats import SeatDay
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import locale_of, render

# Geometry of the chart (SVG user units), like the campaign page's progress chart.
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


def _ticks(top: int) -> list[int]:
    """Round values from 0 to at least `top`, at most five of them: steps of 1, 2, 5, 10…"""
    nice, k, step = (1, 2, 5), 0, 1
    while math.ceil(top / step) > 4:
        k += 1
        step = nice[k % 3] * 10 ** (k // 3)
    return list(range(0, step * max(math.ceil(top / step), 1) + 1, step))


def usage_chart(days: list[SeatDay], capacity: int, locale: str) -> UsageChart | None:
    """The chart of `days` against `capacity`; None when the period has no day yet."""
    if not days:
        return None
    ticks = _ticks(max(days[-1].used, capacity))
    y_max = max(ticks[-1], 1)
    plot_w, plot_h = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + (plot_w * i / span if len(days) > 1 else plot_w / 2), 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - plot_h * value / y_max, 1)

    labels = [format_date(day.day, "short", locale=locale) for day in days]
    points = [(x(i), y(day.used)) for i, day in enumerate(days)]
    if len(points) == 1:  # one day: a flat segment across the plot, not an invisible dot
        points = [(float(LEFT), points[0][1]), (float(CHART_W - RIGHT), points[0][1])]
    picks = sorted({0, len(days) // 2, len(days) - 1})
    return UsageChart(
        width=CHART_W,
        height=CHART_H,
        used_line=" ".join(f"{px},{py}" for px, py in points),
        capacity_y=y(capacity),
        y_ticks=[(y(t), t) for t in ticks],
        x_ticks=[(x(i), labels[i]) for i in picks],
        baseline=y(0),
        plot_left=LEFT,
        plot_right=CHART_W - RIGHT,
        first=format_date(days[0].day, "long", locale=locale),
        last=format_date(days[-1].day, "long", locale=locale),
        days=[(label, day) for label, day in zip(labels, days, strict=True) if day.consumed],
    )


@get("/billing/usage", opt={"permission": Permission.BILLING_READ})
async def usage_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    now = datetime.now(UTC)
    report = await seats.usage_report(ctx, now)
    chart = None
    if report is not None:
        chart = usage_chart(report.days, report.summary.capacity, locale_of(request))
    return render(
        request,
        "console/billing_usage.html",
        ctx=ctx,
        report=report,
        chart=chart,
        today=now.astimezone(ctx.tenant.zone).date(),
    )


handlers = [usage_page]
