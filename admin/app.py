"""The back office's router: every page under `/admin`, and where its templates are.

Each module lists its handlers in `handlers`; every one of them sits behind
`web.guards.staff_member` (a staff role, the second factor passed in this session, and the
permission the handler names in `opt`), but for the second factor's own pages
(`admin.access`), which need only a signed-in staff member.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router

from admin import (
    access,
    content,
    dashboard,
    impersonation,
    jobs,
    onboarding,
    plans,
    tenant_actions,
    tenant_detail,
    tenants,
)

#: The back office's own templates (`admin/…`), searched before the shared ones.
TEMPLATES = Path(__file__).parent / "templates"


def admin_router() -> Router:
    """`/admin/…`, left out of the API documentation."""
    return Router(
        path="/admin",
        route_handlers=[
            *access.handlers,
            *dashboard.handlers,
            *tenants.handlers,
            *onboarding.handlers,
            *tenant_detail.handlers,
            *tenant_actions.handlers,
            *impersonation.handlers,
            *plans.handlers,
            *jobs.handlers,
            *content.handlers,
        ],
        include_in_schema=False,
    )
