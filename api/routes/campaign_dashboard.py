"""The campaign page's dashboard: the participants table (search, status and group filters,
keyset pages as plain links) and the charts' geometry (progress over time, levels).

Everything here is delivery: figures come from `campaigns.campaign_listing` (a fixed number
of queries whatever the number of participants); this module turns them into what the
template draws. Filters are a GET form, so the table works without JavaScript and every
view is a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from litestar import Request

from campaigns import campaign_listing
from campaigns.campaign_listing import ParticipationRow, ProgressDay
from campaigns.paging import Page
from core.errors import Invalid
from core.l10n import format_day
from tenants.context import TenantContext
from web.charts import ticks
from web.pages import locale_of

#: Participants per page of the dashboard's table.
TABLE_SIZE = 25
FILTERS = ("search", "status", "group")

# Geometry of the progress chart (SVG user units).
CHART_W, CHART_H = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 36
#: The phone layout of the same chart: drawn near its size on a 360-pixel screen, so that its
#: labels keep their size (the wide drawing, scaled down, would shrink them to 6 pixels).
NARROW_W, NARROW_H = 320, 220
SERIES = ("started", "completed", "shared")
#: The least distance between two value labels of a one-day chart (13px text).
VALUE_GAP = 16


@dataclass(frozen=True)
class Dashboard:
    """What the campaign page adds for the dashboard, and a refused filter (422), if any."""

    context: dict[str, Any]
    error: Invalid | None = None


@dataclass(frozen=True)
class ProgressChart:
    """A line per series (started, completed, shared) as SVG points, with axis ticks."""

    width: int
    height: int
    lines: dict[str, str]
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]
    baseline: float
    plot_left: int
    plot_right: int
    first: str
    last: str
    days: list[tuple[str, ProgressDay]] = field(default_factory=list)
    #: With a single day of data, the lines have no length: each series is drawn as a dot
    #: (series, x, y, radius), and each distinct value is written once beside them
    #: (x, y, value).
    dots: list[tuple[str, float, float, float]] = field(default_factory=list)
    values: list[tuple[float, float, int]] = field(default_factory=list)


def _filters(request: Request[Any, Any, Any]) -> dict[str, str]:
    query = request.query_params
    return {name: (query.get(name) or "").strip() for name in FILTERS if query.get(name)}


def _link(base: str, filters: dict[str, str], cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return f"{base}?{urlencode({**filters, 'cursor': cursor})}#participants"


def progress_chart(
    days: list[ProgressDay], locale: str, width: int = CHART_W, height: int = CHART_H
) -> ProgressChart | None:
    """The progress series as polylines, in a drawing of `width` × `height` user units; None
    when nobody has started yet."""
    if not days:
        return None
    marks = ticks(days[-1].started)
    y_max = max(marks[-1], 1)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    span = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + (plot_w * i / span if len(days) > 1 else plot_w / 2), 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - plot_h * value / y_max, 1)

    lines = {
        series: " ".join(f"{x(i)},{y(getattr(day, series))}" for i, day in enumerate(days))
        for series in SERIES
    }
    labels = [format_day(day.day, locale, width="short") for day in days]
    picks = sorted({0, len(days) // 2, len(days) - 1})
    changed = [
        (label, day)
        for label, day in zip(labels, days, strict=True)
        if day.new_started or day.new_completed or day.new_shared
    ]
    dots: list[tuple[str, float, float, float]] = []
    values: list[tuple[float, float, int]] = []
    if len(days) == 1:
        # Concentric rings, so that series with the same figure all stay visible.
        for series, radius in (("started", 9.0), ("completed", 6.0), ("shared", 3.0)):
            dots.append((series, x(0), y(getattr(days[0], series)), radius))
        shown = sorted({getattr(days[0], series) for series in SERIES}, reverse=True)
        values = [(x(0) + 16, y(value) + 4, value) for value in shown]
    return ProgressChart(
        width=width,
        height=height,
        lines=lines,
        y_ticks=[(y(t), t) for t in marks],
        x_ticks=[(x(i), labels[i]) for i in picks],
        baseline=y(0),
        plot_left=LEFT,
        plot_right=width - RIGHT,
        first=format_day(days[0].day, locale, width="long"),
        last=format_day(days[-1].day, locale, width="long"),
        days=changed,
        dots=dots,
        values=_apart(values),
    )


def _apart(values: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Value labels moved down where needed, so that none overlaps the one above it."""
    placed: list[tuple[float, float, int]] = []
    for x, y, value in values:  # top to bottom
        if placed and y - placed[-1][1] < VALUE_GAP:
            y = placed[-1][1] + VALUE_GAP
        placed.append((x, y, value))
    return placed


async def dashboard(
    request: Request[Any, Any, Any], ctx: TenantContext, campaign_id: Any
) -> Dashboard:
    """The participants table (filtered and paged from the query string) and the progress
    chart of the campaign. A bad filter or page link is not fatal: the table is shown empty
    with the reason next to the filter, and the page answers 422."""
    filters = _filters(request)
    base = f"/o/{ctx.tenant.slug}/campaigns/{campaign_id}"
    error: Invalid | None = None
    try:
        page: Page[ParticipationRow] = await campaign_listing.list_participations(
            ctx,
            campaign_id,
            request.query_params.get("cursor") or None,
            TABLE_SIZE,
            status=filters.get("status"),
            search=filters.get("search"),
            group=filters.get("group"),
        )
    except Invalid as refused:
        error, page = refused, Page([], None, None)
    groups = await campaign_listing.campaign_groups(ctx, campaign_id)
    days = await campaign_listing.campaign_progress(ctx, campaign_id)
    context = {
        "participants": page,
        "filters": filters,
        "filtered": bool(filters),
        "groups": groups,
        "group_options": [(group, group) for group in groups],
        "participation_statuses": campaign_listing.PARTICIPATION_STATUSES,
        "next_link": _link(base, filters, page.next_cursor),
        "previous_link": _link(base, filters, page.previous_cursor),
        "progress": progress_chart(days, locale_of(request)),
        "progress_narrow": progress_chart(days, locale_of(request), NARROW_W, NARROW_H),
    }
    return Dashboard(context, error)
