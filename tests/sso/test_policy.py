"""The sign-in policy: "SSO required for members" turns password and magic-link sign-in off for
an organization's members, but for its break-glass owner; the console page that sets it."""

from __future__ import annotations

import json
import re

import pytest

from core.database import execute, fetch, global_transaction
from core.errors import Forbidden, Invalid
from sso.policy import password_allowed, policy_page, set_policy, sso_required_connections
from tenants.members import add_member
from tests.api.conftest import PASSWORD, Browser
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.mail import last_link
from tests.sso.seeding import add_connection


async def _policy_events(tenant: TenantFixture) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = $2 "
            "ORDER BY occurred_at",
            tenant.id,
            "sso.policy_changed",
        )
    return [json.loads(row["details"]) for row in rows]


async def test_requiring_sso_needs_an_enabled_connection(tenant_a: TenantFixture) -> None:
    await add_connection(tenant_a.id, enabled=False)
    with pytest.raises(Invalid) as refused:
        await set_policy(tenant_a.owner_ctx, True, None)
    assert refused.value.field == "sso_required"
    assert not (await policy_page(tenant_a.owner_ctx)).policy.sso_required_for_members


async def test_requiring_sso_refuses_members_passwords_but_the_break_glass_owners(
    tenant_a: TenantFixture,
) -> None:
    connection = await add_connection(tenant_a.id, name="Entra ID")
    assert await password_allowed(tenant_a.member.id)
    saved = await set_policy(tenant_a.owner_ctx, True, str(tenant_a.owner.id))
    assert saved.sso_required_for_members
    assert not await password_allowed(tenant_a.member.id)
    assert await password_allowed(tenant_a.owner.id)
    offered = await sso_required_connections(tenant_a.member.id)
    assert offered is not None
    assert [c.connection_id for c in offered] == [connection]
    events = await _policy_events(tenant_a)
    assert events[-1]["sso_required_for_members"] is True
    assert events[-1]["break_glass_user_id"] == str(tenant_a.owner.id)
    # Saving the same policy again records nothing new.
    await set_policy(tenant_a.owner_ctx, True, str(tenant_a.owner.id))
    assert len(await _policy_events(tenant_a)) == len(events)


async def test_a_person_in_several_organizations_loses_the_password_if_any_requires_sso(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await add_member(tenant_b.owner_ctx, tenant_a.member, "member")
    await add_connection(tenant_b.id)
    await set_policy(tenant_b.owner_ctx, True, None)
    assert not await password_allowed(tenant_a.member.id)
    assert await password_allowed(tenant_a.owner.id)  # not a member of B


async def test_the_break_glass_person_must_be_an_owner(tenant_a: TenantFixture) -> None:
    await add_connection(tenant_a.id)
    for wrong in (str(tenant_a.member.id), "not-a-uuid"):
        with pytest.raises(Invalid) as refused:
            await set_policy(tenant_a.owner_ctx, True, wrong)
        assert refused.value.field == "break_glass"


async def test_a_break_glass_owner_who_is_no_longer_an_owner_loses_the_exception(
    tenant_a: TenantFixture,
) -> None:
    await add_connection(tenant_a.id)
    await set_policy(tenant_a.owner_ctx, True, str(tenant_a.owner.id))
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE membership SET role = 'admin' WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            tenant_a.owner.id,
        )
    assert not await password_allowed(tenant_a.owner.id)


async def test_without_an_enabled_connection_the_policy_locks_nobody_out(
    tenant_a: TenantFixture,
) -> None:
    connection = await add_connection(tenant_a.id)
    await set_policy(tenant_a.owner_ctx, True, None)
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE sso_connection SET enabled = false WHERE tenant_id = $1 AND id = $2",
            tenant_a.id,
            connection,
        )
    assert await password_allowed(tenant_a.member.id)


async def test_only_sso_managers_see_and_change_the_policy(tenant_a: TenantFixture) -> None:
    with pytest.raises(Forbidden):
        await policy_page(tenant_a.member_ctx)
    with pytest.raises(Forbidden):
        await set_policy(tenant_a.member_ctx, False, None)


async def test_the_password_sign_in_is_refused_with_the_organizations_connections(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    connection = await add_connection(tenant_a.id, name="Entra ID")
    await set_policy(tenant_a.owner_ctx, True, None)
    refused = await browser.post(
        "/login", {"email": tenant_a.member.email, "password": PASSWORD, "next": "/o/"}
    )
    assert refused.status_code == 403
    assert "requires you to sign in through its identity provider" in refused.text
    assert f"/sso/{tenant_a.slug}/oidc/{connection}/start?next=/o/" in refused.text
    assert (await browser.get("/account")).status_code == 303  # not signed in


async def test_a_magic_link_is_refused_too(browser: Browser, tenant_a: TenantFixture) -> None:
    await add_connection(tenant_a.id)
    await set_policy(tenant_a.owner_ctx, True, None)
    await browser.post("/login/link", {"email": tenant_a.member.email}, page="/login/link")
    link = await last_link(tenant_a.member.email, r"/login/link/[\w-]+")
    refused = await browser.post(link, {"next": "/o/"}, page=link)
    assert refused.status_code == 403
    assert (await browser.get("/account")).status_code == 303


async def test_the_console_page_sets_the_policy(browser: Browser, tenant_a: TenantFixture) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/sso/policy"
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert "Enable a connection first" in shown.text
    refused = await browser.post(page, {"sso_required": "1"}, page=page)
    assert refused.status_code == 422
    await add_connection(tenant_a.id)
    saved = await browser.post(
        page, {"sso_required": "1", "break_glass": str(tenant_a.owner.id)}, page=page
    )
    assert saved.status_code == 303
    assert not await password_allowed(tenant_a.member.id)
    again = await browser.get(page)
    assert re.search(rf'value="{tenant_a.owner.id}"\s+selected', again.text)
    # the owner, break-glass, still signs in with a password
    browser.client.cookies.clear()
    await browser.login(tenant_a.owner)
    member = await browser.get(page)
    assert member.status_code == 200


async def test_members_cannot_open_the_policy_page(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    assert (await browser.get(f"/o/{tenant_a.slug}/sso/policy")).status_code == 403


async def test_organizations_in_suspension_do_not_lock_their_members_out(
    tenant_a: TenantFixture,
) -> None:
    await add_connection(tenant_a.id)
    await set_policy(tenant_a.owner_ctx, True, None)
    async with global_transaction():
        await execute("UPDATE organization SET status = 'closed' WHERE id = $1", tenant_a.id)
    assert await password_allowed(tenant_a.member.id)
