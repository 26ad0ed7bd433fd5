"""The tenants list of the back office: search, filters, sorting and keyset paging over every
organization (`billing.book.dangerously_list_tenants`), for staff who read tenants."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from billing.book import (
    ORDERS,
    SORTS,
    dangerously_list_tenants,
    dangerously_plan_codes,
    tenant_filters,
)
from core.errors import Invalid
from tenants.book import KINDS, STATUSES
from tenants.permissions import StaffPermission
from web.guards import StaffCtx
from web.pages import form_error, render

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}
#: The query parameters the list reads (all optional).
PARAMETERS = ("q", "kind", "status", "plan", "country", "sort", "order", "cursor")
TEMPLATE = "admin/tenants.html"


@get("/tenants", opt=TENANTS_READ, name="admin_tenants")
async def tenants_list(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    """One page of tenants; a filter or page link no tenant could match is a 4xx that shows
    the form again with its message."""
    values = {name: request.query_params.get(name) or "" for name in PARAMETERS}
    common: dict[str, Any] = {
        "section": "tenants",
        "kinds": KINDS,
        "statuses": STATUSES,
        "sorts": SORTS,
        "orders": ORDERS,
    }
    try:
        filters = tenant_filters(**{k: v for k, v in values.items() if k != "cursor"})
        page = await dangerously_list_tenants(staff, filters, values["cursor"] or None)
    except Invalid as error:
        plans = await dangerously_plan_codes(staff)
        return form_error(request, TEMPLATE, error, values, page=None, plans=plans, **common)
    shown = {**values, "country": filters.country or "", "sort": filters.sort}
    shown["order"] = filters.order
    return render(request, TEMPLATE, page=page, plans=page.plans, values=shown, **common)


handlers: list[Any] = [tenants_list]
