"""A new employee's first console sign-in, over HTTP through the real routes and the real
OpenID provider: the console sends them to /login, home-realm discovery sends their address
of a verified domain to the organization's provider, and they land in that organization's
console with the role their groups map to, their account and membership just made and the
sign-in in the audit log. An address of a domain nobody verified is refused, and told why."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from core import database
from core.database import global_transaction
from core.settings import get_settings
from tests.api.conftest import Browser, audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.conftest import OidcPeer, peer_connection
from tests.sso.seeding import add_verified_domain, unique_domain


async def _connection(peer: OidcPeer, tenant: TenantFixture) -> UUID:
    """An enabled connection of `tenant` to the provider: its "Jalon admins" group maps to
    admin, everyone else is a member."""
    return await peer_connection(
        peer,
        tenant,
        name="Staff directory",
        scopes="openid email profile groups",  # the provider releases groups in their scope
        role_mapping={"Jalon admins": "admin"},
        default_role="member",
    )


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == get_settings().base_url
    return f"{parts.path}?{parts.query}"


async def _account(email: str) -> dict[str, Any] | None:
    async with global_transaction():
        rows = await database.fetch(
            "SELECT id, email, password_hash FROM user_account WHERE lower(email) = lower($1)",
            email,
        )
    return dict(rows[0]) if rows else None


async def _audit(tenant: TenantFixture, action: str) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = $2 "
            "ORDER BY occurred_at, id",
            tenant.id,
            action,
        )
    return [
        json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
        for row in rows
    ]


async def _discover(browser: Browser, email: str, next_path: str) -> Any:
    """The console sends the signed-out person to /login; they give their email."""
    sent = await browser.client.get(next_path)
    assert sent.status_code in (302, 303), sent.text
    login = urlsplit(sent.headers["location"])
    assert login.path == "/login"
    assert parse_qs(login.query)["next"] == [next_path]
    page = await browser.get(f"{login.path}?{login.query}")
    assert page.status_code == 200
    assert 'name="password"' not in page.text  # the email comes first
    return await browser.post("/login", {"email": email, "next": next_path})


async def test_a_new_employee_of_a_verified_domain_lands_in_the_console_with_the_mapped_role(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, tenant_b: TenantFixture, browser: Browser
) -> None:
    domain = unique_domain("staff")
    await add_verified_domain(tenant_a.id, domain)
    connection_id = await _connection(oidc_peer, tenant_a)
    email = f"nina.new@{domain}"
    oidc_peer.set_claims(email, {"groups": ["Jalon admins"], "given_name": "Nina"})
    assert await _account(email) is None
    console = f"/o/{tenant_a.slug}"
    before = await audit_actions(tenant_a.id)
    others_before = await audit_actions(tenant_b.id)

    routed = await _discover(browser, email, console)
    assert routed.status_code == 303, routed.text
    start = urlsplit(routed.headers["location"])
    assert start.path == f"/sso/{tenant_a.slug}/oidc/{connection_id}/start"
    to_provider = await browser.client.get(f"{start.path}?{start.query}")
    assert to_provider.status_code == 303
    back = await oidc_peer.log_in(to_provider.headers["location"], email)
    landed = await browser.client.get(_local(back))
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"] == console

    dashboard = await browser.client.get(console)
    assert dashboard.status_code == 200
    account = await _account(email)
    assert account is not None
    assert account["password_hash"] is None  # made by the sign-in, no password (no argon2)
    async with as_tenant(tenant_a.id):
        memberships = await database.fetch(
            "SELECT role, suspended_at FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            account["id"],
        )
    assert [(m["role"], m["suspended_at"]) for m in memberships] == [("admin", None)]
    assert f'href="/o/{tenant_a.slug}/sso"' in dashboard.text  # admins' pages offered
    assert (await browser.client.get(f"/o/{tenant_a.slug}/sso")).status_code == 200

    recorded = (await audit_actions(tenant_a.id))[len(before) :]
    assert "member.added" in recorded
    assert "sso.sign_in" in recorded
    sign_in = (await _audit(tenant_a, "sso.sign_in"))[-1]
    assert sign_in["email"] == email
    added = (await _audit(tenant_a, "member.added"))[-1]
    assert (added["email"], added["role"], added["via"]) == (email, "admin", "sso")
    # Nothing of it in the other organization, whose console stays closed to them.
    assert await audit_actions(tenant_b.id) == others_before
    assert (await browser.client.get(f"/o/{tenant_b.slug}/")).status_code in (403, 404)


async def test_a_person_of_an_unverified_domain_is_refused_with_a_clear_message(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    await add_verified_domain(tenant_a.id, unique_domain("staff"))
    connection_id = await _connection(oidc_peer, tenant_a)
    email = f"sam@{unique_domain('elsewhere')}"
    console = f"/o/{tenant_a.slug}"

    # Discovery does not send an unverified domain to the organization's provider...
    asked = await _discover(browser, email, console)
    assert asked.status_code == 200
    assert 'name="password"' in asked.text
    assert f"/sso/{tenant_a.slug}/" not in asked.text
    # ...and when they reach it anyway (the organization's sign-in link), they are refused.
    before = await audit_actions(tenant_a.id)
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next={console}"
    to_provider = await browser.client.get(start)
    back = await oidc_peer.log_in(to_provider.headers["location"], email)
    refused = await browser.client.get(_local(back))

    assert refused.status_code == 403
    assert "Your account is not allowed to sign in to this organization" in refused.text
    assert "Ask its administrator to invite you." in refused.text
    assert "provisioning.domain" in refused.text
    assert (await audit_actions(tenant_a.id))[len(before) :] == ["sso.refused"]
    details = (await _audit(tenant_a, "sso.refused"))[-1]
    assert (details["reason"], details["email"]) == ("provisioning.domain", email)
    assert await _account(email) is None  # no account minted
    assert (await browser.client.get(console)).status_code in (302, 303)  # not signed in
