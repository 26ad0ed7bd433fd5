"""The back office's access matrix: every route under `/admin`, found in the application
itself (a new one is covered the moment it exists), is refused to

- a signed-out visitor (sent to sign in),
- a tenant's owner, who is not staff (404: the back office does not say it exists),
- a staff member who has not passed the second factor in this session (sent to it),
- a staff member whose role lacks the permission the handler names (403).

Ids in the paths are random: every refusal comes from the guards, before any lookup, so it
holds whatever the id names (another tenant's objects included; each page's own tests show
that tenant B's ids under tenant A's are unknown).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from tenants.permissions import STAFF_ROLE_PERMISSIONS, StaffPermission, StaffRole
from tests.admin.conftest import StaffFixture, make_staff_member, staff_login
from tests.api.conftest import Browser, browser_on
from tests.conftest import TenantFixture, make_tenant

#: The pages of the second factor itself: any signed-in staff member, no permission.
SECOND_FACTOR_PAGES = {"/admin/second-factor", "/admin/second-factor/setup"}
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@dataclass(frozen=True)
class AdminRoute:
    method: str
    path: str  # as declared, with its parameters
    permission: StaffPermission | None

    @property
    def url(self) -> str:
        """The path with made-up values for its parameters."""

        def value(match: re.Match[str]) -> str:
            return {"uuid": str(uuid4()), "int": "1"}.get(match.group(2), "made-up")

        return _PARAM.sub(value, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def admin_routes(app: Litestar) -> list[AdminRoute]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/admin"):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                found.append(AdminRoute(method, route.path, handler.opt.get("permission")))
    return sorted(found, key=str)


async def _request(browser: Browser, route: AdminRoute) -> Any:
    if route.method == "GET":
        return await browser.get(route.url)
    return await browser.post(route.url, {"reason": "isolation matrix"}, page="/login")


@pytest.fixture(scope="module")
async def outsider(db: str) -> TenantFixture:
    return await make_tenant("Outsider")


@pytest.fixture(scope="module")
async def staff_by_role(db: str) -> dict[StaffRole, StaffFixture]:
    return {role: await make_staff_member(role, f"Matrix {role.value}") for role in StaffRole}


@pytest.fixture(scope="module")
async def role_browsers(
    app: Litestar, staff_by_role: dict[StaffRole, StaffFixture]
) -> AsyncIterator[dict[StaffRole, Browser]]:
    """One browser per staff role, signed in with the second factor."""
    browsers: dict[StaffRole, Browser] = {}
    contexts = [browser_on(app) for _ in StaffRole]
    try:
        for role, context in zip(StaffRole, contexts, strict=True):
            browser = await context.__aenter__()
            await staff_login(browser, staff_by_role[role])
            browsers[role] = browser
        yield browsers
    finally:
        for context in contexts[: len(browsers)]:
            await context.__aexit__(None, None, None)


def test_the_back_office_has_routes_and_each_names_its_permission(app: Litestar) -> None:
    routes = admin_routes(app)
    assert len(routes) > 20
    unnamed = [str(r) for r in routes if r.permission is None and r.path not in SECOND_FACTOR_PAGES]
    # The only pages without a permission are the second factor's own and the end of an
    # impersonation (any staff member may stop viewing a tenant).
    assert set(unnamed) <= {"POST /admin/impersonation/stop"}


async def test_a_signed_out_visitor_is_sent_to_sign_in(app: Litestar) -> None:
    wrong = []
    async with browser_on(app) as browser:
        for route in admin_routes(app):
            response = await _request(browser, route)
            location = response.headers.get("location", "")
            if response.status_code != 303 or not location.startswith("/login"):
                wrong.append(f"{route}: {response.status_code} {location}")
    assert wrong == []


async def test_a_tenant_owner_is_told_the_back_office_does_not_exist(
    app: Litestar, outsider: TenantFixture
) -> None:
    wrong = []
    async with browser_on(app) as browser:
        await browser.login(outsider.owner)
        for route in admin_routes(app):
            response = await _request(browser, route)
            if response.status_code != 404:
                wrong.append(f"{route}: {response.status_code}")
    assert wrong == []


async def test_staff_without_the_second_factor_reach_nothing(
    app: Litestar, staff_by_role: dict[StaffRole, StaffFixture]
) -> None:
    wrong = []
    async with browser_on(app) as browser:
        await browser.login(staff_by_role[StaffRole.SUPERADMIN].user)  # password only
        for route in admin_routes(app):
            if route.path in SECOND_FACTOR_PAGES:
                continue
            response = await _request(browser, route)
            location = response.headers.get("location", "")
            if response.status_code != 303 or not location.startswith("/admin/second-factor"):
                wrong.append(f"{route}: {response.status_code} {location}")
    assert wrong == []


async def test_a_staff_member_of_the_wrong_role_is_refused(
    app: Litestar, role_browsers: dict[StaffRole, Browser]
) -> None:
    wrong, checked = [], 0
    for route in admin_routes(app):
        if route.permission is None:
            continue
        for role, browser in role_browsers.items():
            if route.permission in STAFF_ROLE_PERMISSIONS[role]:
                continue
            checked += 1
            response = await _request(browser, route)
            if response.status_code != 403:
                wrong.append(f"{route} as {role.value}: {response.status_code}")
    assert wrong == []
    assert checked > 0


def test_support_cannot_change_billing_and_content_editors_see_no_tenant_data() -> None:
    support = STAFF_ROLE_PERMISSIONS[StaffRole.SUPPORT]
    editor = STAFF_ROLE_PERMISSIONS[StaffRole.CONTENT_EDITOR]
    assert StaffPermission.BILLING_MANAGE not in support
    assert StaffPermission.TENANTS_MANAGE not in support
    assert editor == {StaffPermission.CONTENT_TRIAGE}
