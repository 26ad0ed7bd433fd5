"""The console's SCIM page: an admin makes a token (shown once), a directory uses it, the
admin revokes it; group mappings are saved and removed; plain members are refused."""

from __future__ import annotations

import re

from litestar import Litestar

from sso import scim
from sso.scim_tokens import list_scim_tokens
from tests.api.conftest import Browser, app, audit_actions, browser, client  # noqa: F401
from tests.conftest import TenantFixture
from tests.sso.scim_helpers import scim_client

_TOKEN = re.compile(r'value="(jalon_scim_[^"]+)"')


async def test_an_admin_makes_a_token_shown_once_then_revokes_it(
    app: Litestar,  # noqa: F811
    browser: Browser,  # noqa: F811
    tenant_a: TenantFixture,
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/sso/scim"
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert "/scim/v2" in shown.text
    made = await browser.post(f"{page}/tokens", {"name": "Entra ID"}, page=page)
    assert made.status_code == 200
    match = _TOKEN.search(made.text)
    assert match
    token = match.group(1)
    assert token not in (await browser.get(page)).text  # never shown again
    async with scim_client(app, token) as directory:
        assert (await directory.get("/Users")).status_code == 200
    (listed,) = await list_scim_tokens(tenant_a.owner_ctx)
    revoked = await browser.post(f"{page}/tokens/{listed.id}/revoke", page=page)
    assert revoked.status_code == 303
    async with scim_client(app, token) as directory:
        assert (await directory.get("/Users")).status_code == 401
    assert (await audit_actions(tenant_a.id))[-2:] == ["scim.token_created", "scim.token_revoked"]


async def test_an_admin_maps_a_group_to_a_role_and_removes_the_mapping(
    browser: Browser,  # noqa: F811
    tenant_a: TenantFixture,
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/sso/scim"
    saved = await browser.post(
        f"{page}/mappings",
        {"group_name": "Jalon admins", "role": "admin", "learner_group": "HQ"},
        page=page,
    )
    assert saved.status_code == 303
    (mapping,) = await scim.list_group_mappings(tenant_a.owner_ctx)
    assert (mapping.group_name, mapping.role, mapping.learner_group) == (
        "Jalon admins",
        "admin",
        "HQ",
    )
    assert "Jalon admins" in (await browser.get(page)).text
    wrong = await browser.post(f"{page}/mappings", {"group_name": "X", "role": "owner"}, page=page)
    assert wrong.status_code == 422
    removed = await browser.post(f"{page}/mappings/{mapping.id}/remove", page=page)
    assert removed.status_code == 303
    assert await scim.list_group_mappings(tenant_a.owner_ctx) == []


async def test_a_plain_member_cannot_open_the_scim_page(
    browser: Browser,  # noqa: F811
    tenant_a: TenantFixture,
) -> None:
    await browser.login(tenant_a.member)
    assert (await browser.get(f"/o/{tenant_a.slug}/sso/scim")).status_code == 403
