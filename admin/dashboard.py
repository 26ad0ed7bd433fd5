"""The back office's dashboard: the book of business at a glance, each chart with its table.

Tenants by status, kind and country (`tenants.book`), revenue per currency, seats sold against
seats used, trials ending this week, failed payments and overdue invoices (`billing.book`, whose
documentation says how each figure is counted), and assessments started and completed per day
over 30 days (`campaigns.book`). Charts are inline SVG drawn here (no script); the figures are
always in a table beneath.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.response import Template

from billing.book import dangerously_billing_overview
from campaigns.book import DayActivity, dangerously_assessments_per_day
from core.l10n import format_day
from tenants.book import dangerously_count_tenants
from tenants.permissions import StaffPermission
from web.charts import ticks
from web.guards import StaffCtx
from web.pages import locale_of, render

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}

# Geometry of the activity chart (SVG user units), as the console's progress chart.
CHART_W, CHART_H = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 36


@dataclass(frozen=True)
class ActivityChart:
    """Assessments started and completed per day as two polylines, with axis ticks."""

    width: int
    height: int
    started: str
    completed: str
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    baseline: float
    plot_left: int
    plot_right: int
    first: str
    last: str
    started_total: int
    completed_total: int


def activity_chart(days: list[DayActivity], locale: str) -> ActivityChart:
    """The two daily series as polylines over the days given (at least one)."""
    marks = ticks(max(max(day.started, day.completed) for day in days))
    y_max = max(marks[-1], 1)
    plot_w, plot_h = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + plot_w * i / span, 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - plot_h * value / y_max, 1)

    def line(series: str) -> str:
        return " ".join(f"{x(i)},{y(getattr(day, series))}" for i, day in enumerate(days))

    picks = sorted({0, len(days) // 2, len(days) - 1})
    return ActivityChart(
        width=CHART_W,
        height=CHART_H,
        started=line("started"),
        completed=line("completed"),
        y_ticks=[(y(t), t) for t in marks],
        x_ticks=[(x(i), format_day(days[i].day, locale, width="short")) for i in picks],
        baseline=y(0),
        plot_left=LEFT,
        plot_right=CHART_W - RIGHT,
        first=format_day(days[0].day, locale, width="long"),
        last=format_day(days[-1].day, locale, width="long"),
        started_total=sum(day.started for day in days),
        completed_total=sum(day.completed for day in days),
    )


@get("/", opt=TENANTS_READ, name="admin_dashboard")
async def dashboard(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    """The dashboard, as of now."""
    now = datetime.now(UTC)
    counts = await dangerously_count_tenants(staff)
    billing = await dangerously_billing_overview(staff, now)
    days = await dangerously_assessments_per_day(staff, now)
    return render(
        request,
        "admin/dashboard.html",
        section="dashboard",
        counts=counts,
        billing=billing,
        days=days,
        chart=activity_chart(days, locale_of(request)),
    )


handlers: list[Any] = [dashboard]
