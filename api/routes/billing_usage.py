"""The seat usage page of the tenant console, `/o/{slug}/billing/usage`: the current period's
seats (used, capacity, remaining, the overage policy), a chart of the seats used day by day
with the capacity, the same figures as a table, and the seat packs with their validity.

Delivery only: the figures come from `billing.seats.usage_report` (a fixed number of queries
whatever the number of learners); `web.charts` turns them into the chart's geometry. Admins
and owners only (`org:billing:read`); another organization's slug is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.response import Template

from billing import seats
from tenants.permissions import Permission
from web.charts import usage_chart
from web.guards import Ctx
from web.pages import locale_of, render


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
