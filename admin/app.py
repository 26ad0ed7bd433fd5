"""The back office's router: every page under `/admin`, and where its templates are.

Each module lists its handlers in `handlers`; every one of them sits behind
`web.guards.staff_member` (a staff role, the second factor passed in this session, and the
permission the handler names in `opt={"permission": …}`), but for the second factor's own
pages (`admin.access`), which need only a signed-in staff member.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.di import Provide

from admin import (
    access,
    content,
    dashboard,
    impersonation,
    jobs,
    onboarding,
    plans,
    staff,
    tenant_actions,
    tenant_detail,
    tenants,
)
from web.guards import staff_context, staff_member

#: The back office's own templates (`admin/…`), searched before the shared ones.
TEMPLATES = Path(__file__).parent / "templates"


def admin_router() -> Router:
    """`/admin/…`, left out of the API documentation. Every page but the second factor's sits
    behind `staff_member()`, and handlers take the staff context as `staff: StaffCtx`."""
    staff_pages = Router(
        path="/",
        guards=[staff_member()],
        dependencies={"staff": Provide(staff_context, sync_to_thread=False)},
        route_handlers=[
            *dashboard.handlers,
            *tenants.handlers,
            *onboarding.handlers,
            *tenant_detail.handlers,
            *tenant_actions.handlers,
            *impersonation.handlers,
            *plans.handlers,
            *jobs.handlers,
            *content.handlers,
            *staff.handlers,
        ],
    )
    return Router(
        path="/admin",
        route_handlers=[*access.handlers, staff_pages],
        include_in_schema=False,
    )
