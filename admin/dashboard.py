"""The back office's dashboard (being built: issue 12)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from tenants.permissions import StaffPermission

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}


@get("/", opt=TENANTS_READ, name="admin_dashboard")
async def dashboard(request: Request[Any, Any, Any]) -> Template:
    from web.pages import render

    return render(request, "admin/dashboard.html", section="dashboard")


handlers: list[Any] = [dashboard]
