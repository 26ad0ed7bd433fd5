"""Invitations over HTTP: sent from the console, accepted from the mailed link.

The link carries the only copy of the token: the database keeps its digest. Links die when
used, resent, revoked or expired, and each of those answers a clear 4xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from core import database
from tenants.members import add_member
from tenants.organizations import set_status, system_context
from tests.api.conftest import PASSWORD, Browser, audit_actions, browser_on
from tests.conftest import TenantFixture, make_tenant, make_user
from tests.db import as_tenant
from tests.mail import last_link

NEW_ACCOUNT = {
    "name": "Inès Invitée",
    "password": "a long enough password",
    "password_confirm": "a long enough password",
    "locale": "fr",
}


@pytest.fixture(scope="module")
async def shared(db: str) -> TenantFixture:
    """A tenant for the invitations that are refused: nothing may be written to it."""
    return await make_tenant("Shared")


@pytest.fixture(scope="module")
async def owner(app: Litestar, shared: TenantFixture) -> AsyncIterator[Browser]:
    async with browser_on(app) as browser:
        await browser.login(shared.owner)
        yield browser


async def _invite(browser: Browser, tenant: TenantFixture, email: str, role: str = "member") -> str:
    """Invite `email` from the console; the path of the link the invitee receives."""
    members = f"/o/{tenant.slug}/members"
    response = await browser.post(f"{members}/invite", {"email": email, "role": role}, page=members)
    assert response.status_code == 303, response.text
    return await last_link(email, r"/invitations/\S+")


async def _invitation(tenant: TenantFixture, email: str) -> dict[str, Any]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT * FROM invitation WHERE tenant_id = $1 AND lower(email) = lower($2) "
            "ORDER BY created_at DESC",
            tenant.id,
            email,
        )
    assert len(rows) == 1, rows
    return rows[0]


async def _invitation_count(tenant: TenantFixture) -> int:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM invitation WHERE tenant_id = $1", tenant.id
        )
    count: int = rows[0]["n"]
    return count


async def _role_of(tenant: TenantFixture, email: str) -> str | None:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT m.role FROM membership m JOIN user_account u ON u.id = m.user_id "
            "WHERE m.tenant_id = $1 AND lower(u.email) = lower($2)",
            tenant.id,
            email,
        )
    return rows[0]["role"] if rows else None


async def _account_exists(email: str) -> bool:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT 1 FROM user_account WHERE lower(email) = lower($1)", email
        )
    return bool(rows)


async def _expire(tenant: TenantFixture, email: str) -> None:
    async with as_tenant(tenant.id):
        await database.execute(
            "UPDATE invitation SET expires_at = now() - interval '1 minute' "
            "WHERE tenant_id = $1 AND lower(email) = lower($2)",
            tenant.id,
            email,
        )


# --- sending ---------------------------------------------------------------------------


async def test_the_token_is_stored_as_a_digest_and_expires_in_seven_days(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "digest@example.org", "admin")
    token = link.rsplit("/", 1)[1]
    invitation = await _invitation(tenant_a, "digest@example.org")
    assert invitation["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert token not in repr(invitation)
    assert invitation["role"] == "admin"
    assert invitation["invited_by"] == tenant_a.owner.id
    assert invitation["expires_at"] - invitation["created_at"] == timedelta(days=7)


async def test_the_link_shows_the_organization_and_the_role(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "shown@example.org", "admin")
    page = await client.get(link)
    assert page.status_code == 200
    assert f"Join {tenant_a.owner_ctx.tenant.name}" in page.text
    assert "You are invited as admin with the address shown@example.org." in page.text


async def test_inviting_a_member_is_a_conflict_in_any_letter_case(
    owner: Browser, shared: TenantFixture
) -> None:
    before = await audit_actions(shared.id)
    members = f"/o/{shared.slug}/members"
    for email in (shared.member.email, shared.member.email.upper()):
        response = await owner.post(f"{members}/invite", {"email": email}, page=members)
        assert response.status_code == 409
        assert "This person is already a member." in response.text
    assert await _invitation_count(shared) == 0
    assert await audit_actions(shared.id) == before


async def test_a_second_pending_invitation_in_another_case_is_a_conflict(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, "twice@example.org")
    before = await audit_actions(tenant_a.id)
    members = f"/o/{tenant_a.slug}/members"
    again = await browser.post(
        f"{members}/invite", {"email": "TWICE@Example.ORG", "role": "admin"}, page=members
    )
    assert again.status_code == 409
    assert "An invitation is already pending for this address." in again.text
    assert await _invitation_count(tenant_a) == 1
    assert await audit_actions(tenant_a.id) == before


@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("", "member", "This field is required."),
        ("not-an-email", "member", "Enter a valid email address."),
        ("a@b", "member", "Enter a valid email address."),
        ("two words@example.org", "member", "Enter a valid email address."),
        ("<angle@example.org>", "member", "Enter a valid email address."),
        ("x" * 250 + "@example.org", "member", "Enter a valid email address."),
        # every form refuses a control character before any handler reads it (web.pages.form_of)
        ("nul\x00byte@example.org", "member", "This field contains characters that are not"),
        ("tab\tin@example.org", "member", "Enter a valid email address."),
        ("bidi\u202e@example.org", "member", "Enter a valid email address."),
        ("fine@example.org", "superuser", "Choose one of the offered options."),
        ("fine@example.org", "", "Choose one of the offered options."),
    ],
)
async def test_bad_invitations_are_refused_and_nothing_is_written(
    owner: Browser, shared: TenantFixture, email: str, role: str, message: str
) -> None:
    before = await audit_actions(shared.id)
    members = f"/o/{shared.slug}/members"
    response = await owner.post(f"{members}/invite", {"email": email, "role": role}, page=members)
    assert response.status_code == 422
    assert message in response.text
    assert await _invitation_count(shared) == 0
    assert await audit_actions(shared.id) == before


# --- accepting -------------------------------------------------------------------------


async def test_accepting_creates_the_account_signs_in_and_the_link_dies(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "New.Person@example.org", "admin")
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as invitee:
        page = await invitee.get(link)
        assert page.status_code == 200
        assert 'name="password_confirm"' in page.text
        response = await invitee.post(link, NEW_ACCOUNT, page=link)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/o/{tenant_a.slug}/"
        dashboard = await invitee.get(f"/o/{tenant_a.slug}/")
        assert dashboard.status_code == 200  # signed in, in French now
        assert "Vous avez rejoint l’organisation." in dashboard.text
        again = await invitee.post(link, NEW_ACCOUNT, page=link)
        assert again.status_code == 410
    async with database.global_transaction():
        accounts = await database.fetch(
            "SELECT email, name, locale, email_verified FROM user_account WHERE email = $1",
            "New.Person@example.org",
        )
    assert accounts == [
        {
            "email": "New.Person@example.org",
            "name": "Inès Invitée",
            "locale": "fr",
            "email_verified": True,
        }
    ]
    assert await _role_of(tenant_a, "new.person@example.org") == "admin"
    assert (await _invitation(tenant_a, "New.Person@example.org"))["accepted_at"] is not None
    assert await audit_actions(tenant_a.id) == [*before, "invitation.accepted"]


async def test_a_signed_in_person_accepts_an_invitation_to_their_address_in_any_case(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    person = await make_user("Existing Person")
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, person.email.upper())
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as invitee:
        signed_out = await invitee.get(link)
        assert "An account already exists for this address." in signed_out.text
        await invitee.login(person)
        page = await invitee.get(link)
        assert f"Signed in as {person.email}." in page.text
        response = await invitee.post(link, page=link)
        assert response.status_code == 303, response.text
        assert (await invitee.get(f"/o/{tenant_a.slug}/members")).status_code == 200
    assert await _role_of(tenant_a, person.email) == "member"
    assert await audit_actions(tenant_a.id) == [*before, "invitation.accepted"]


@pytest.mark.parametrize(
    "change",
    [
        {},
        # The address's account is told before the details typed for a new one.
        {"password": "short", "password_confirm": "short"},
        {"password_confirm": "something else entirely"},
        {"name": ""},
    ],
)
async def test_creating_an_account_that_exists_is_refused_and_nothing_is_written(
    browser: Browser, app: Litestar, tenant_a: TenantFixture, change: dict[str, str]
) -> None:
    person = await make_user("Existing Person")
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, person.email)
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as stranger:
        response = await stranger.post(link, {**NEW_ACCOUNT, **change}, page=link)
    assert response.status_code == 409
    assert '<div class="notice error" role="alert">An account already exists for this address.' in (
        response.text
    )
    assert await _role_of(tenant_a, person.email) is None
    assert (await _invitation(tenant_a, person.email))["accepted_at"] is None
    assert await audit_actions(tenant_a.id) == before


async def test_someone_signed_in_with_another_address_cannot_accept(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "meant-for-someone@example.org")
    other = await make_user("Other Person")
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as intruder:
        await intruder.login(other)
        response = await intruder.post(link, page=link)
    assert response.status_code == 422
    assert "This invitation was sent to another email address." in response.text
    assert await _role_of(tenant_a, other.email) is None
    assert (await _invitation(tenant_a, "meant-for-someone@example.org"))["accepted_at"] is None
    assert await audit_actions(tenant_a.id) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password_confirm": "something else entirely"}, "The two passwords differ."),
        ({"password": "short", "password_confirm": "short"}, "at least 10 characters"),
        ({"name": ""}, "This field is required."),
        ({"name": "n" * 201}, "This field is too long (200 characters at most)."),
        ({"name": "Bad\x00Name"}, "characters that are not allowed"),
        ({"password": "p" * 201, "password_confirm": "p" * 201}, "This field is too long"),
    ],
)
async def test_bad_account_details_are_refused_and_nothing_is_written(
    owner: Browser,
    app: Litestar,
    shared: TenantFixture,
    change: dict[str, str],
    message: str,
) -> None:
    email = f"careless-{len(change)}-{abs(hash(message)) % 10_000}@example.org"
    link = await _invite(owner, shared, email)
    before = await audit_actions(shared.id)
    async with browser_on(app) as invitee:
        response = await invitee.post(link, {**NEW_ACCOUNT, **change}, page=link)
    assert response.status_code == 422
    assert message in response.text
    assert await _account_exists(email) is False
    assert (await _invitation(shared, email))["accepted_at"] is None
    assert await audit_actions(shared.id) == before
    # The invitation is left as it was: its link still works.
    async with browser_on(app) as invitee:
        assert (await invitee.get(link)).status_code == 200
    revoke = await owner.post(
        f"/o/{shared.slug}/invitations/{(await _invitation(shared, email))['id']}/revoke",
        page=f"/o/{shared.slug}/members",
    )
    assert revoke.status_code == 303


async def test_two_people_accepting_one_link_at_once_make_one_member(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "racer@example.org")
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as first, browser_on(app) as second:
        await first.get(link)
        await second.get(link)
        responses = await asyncio.gather(
            first.client.post(link, data={"_csrf_token": first.csrf, **NEW_ACCOUNT}),
            second.client.post(link, data={"_csrf_token": second.csrf, **NEW_ACCOUNT}),
        )
    assert sorted(r.status_code for r in responses) in ([303, 409], [303, 410])
    assert await _role_of(tenant_a, "racer@example.org") == "member"
    assert await audit_actions(tenant_a.id) == [*before, "invitation.accepted"]


async def test_accepting_when_already_a_member_is_a_conflict(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    person = await make_user("Early Bird")
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, person.email)
    await add_member(tenant_a.owner_ctx, person, "admin")  # meanwhile, added directly
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as invitee:
        await invitee.login(person)
        response = await invitee.post(link, page=link)
    assert response.status_code == 409
    assert "You are already a member of this organization." in response.text
    assert await _role_of(tenant_a, person.email) == "admin"
    assert await audit_actions(tenant_a.id) == before


# --- links that died -------------------------------------------------------------------


async def test_resending_mails_a_new_link_and_the_old_one_dies(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    old = await _invite(browser, tenant_a, "resent@example.org")
    invitation = await _invitation(tenant_a, "resent@example.org")
    before = await audit_actions(tenant_a.id)
    members = f"/o/{tenant_a.slug}/members"
    response = await browser.post(
        f"/o/{tenant_a.slug}/invitations/{invitation['id']}/resend", page=members
    )
    assert response.status_code == 303
    assert "The invitation has been sent again." in (await browser.get(members)).text
    new = await last_link("resent@example.org", r"/invitations/\S+")
    assert new != old
    gone = await client.get(old)
    assert gone.status_code == 410
    assert "This invitation link is not valid any more." in gone.text
    assert (await client.get(new)).status_code == 200
    resent = await _invitation(tenant_a, "resent@example.org")
    assert resent["send_count"] == 2
    assert resent["expires_at"] > invitation["expires_at"]
    assert await audit_actions(tenant_a.id) == [*before, "invitation.resent"]


async def test_a_revoked_link_is_gone_and_cannot_be_revoked_twice(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "revoked@example.org")
    invitation = await _invitation(tenant_a, "revoked@example.org")
    before = await audit_actions(tenant_a.id)
    members = f"/o/{tenant_a.slug}/members"
    revoke = f"/o/{tenant_a.slug}/invitations/{invitation['id']}/revoke"
    assert (await browser.post(revoke, page=members)).status_code == 303
    assert await audit_actions(tenant_a.id) == [*before, "invitation.revoked"]
    async with browser_on(app) as invitee:
        page = await invitee.get(link)
        assert page.status_code == 410
        assert "This invitation link is not valid any more." in page.text
        accept = await invitee.post(link, NEW_ACCOUNT, page="/login")
        assert accept.status_code == 410
        # A dead link is told before the details typed for a new account.
        short = {**NEW_ACCOUNT, "password": "short", "password_confirm": "short"}
        assert (await invitee.post(link, short, page="/login")).status_code == 410
    assert await _account_exists("revoked@example.org") is False
    twice = await browser.post(revoke, page=members)
    assert twice.status_code == 409
    assert "This invitation is no longer pending." in twice.text
    resend = await browser.post(
        f"/o/{tenant_a.slug}/invitations/{invitation['id']}/resend", page=members
    )
    assert resend.status_code == 409
    assert await audit_actions(tenant_a.id) == [*before, "invitation.revoked"]


async def test_an_expired_link_is_gone_in_the_visitors_language(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "late@example.org")
    await _expire(tenant_a, "late@example.org")
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as invitee:
        english = await invitee.get(link)
        assert english.status_code == 410
        assert "This invitation has expired. Ask for a new one." in english.text
        french = await invitee.get(link, headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
        assert french.status_code == 410
        assert "Cette invitation a expiré. Demandez-en une nouvelle." in french.text
        accept = await invitee.post(link, NEW_ACCOUNT, page="/login")
        assert accept.status_code == 410
        mismatched = {**NEW_ACCOUNT, "password_confirm": "something else entirely"}
        refused = await invitee.post(link, mismatched, page="/login")
        assert refused.status_code == 410
        assert "This invitation has expired. Ask for a new one." in refused.text
    assert await _account_exists("late@example.org") is False
    assert await audit_actions(tenant_a.id) == before
    members = await browser.get(f"/o/{tenant_a.slug}/members")
    assert "expired" in members.text


async def test_an_expired_invitation_can_be_resent_or_replaced(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, "second-chance@example.org")
    await _expire(tenant_a, "second-chance@example.org")
    invitation = await _invitation(tenant_a, "second-chance@example.org")
    members = f"/o/{tenant_a.slug}/members"
    await browser.post(f"/o/{tenant_a.slug}/invitations/{invitation['id']}/resend", page=members)
    assert (
        await client.get(await last_link("second-chance@example.org", r"/invitations/\S+"))
    ).status_code == 200

    await _invite(browser, tenant_a, "replaced@example.org")
    await _expire(tenant_a, "replaced@example.org")
    replaced = await browser.post(
        f"{members}/invite", {"email": "Replaced@example.org", "role": "admin"}, page=members
    )
    assert replaced.status_code == 303  # the expired one makes way
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT role, revoked_at IS NOT NULL AS revoked FROM invitation "
            "WHERE tenant_id = $1 AND lower(email) = 'replaced@example.org' ORDER BY created_at",
            tenant_a.id,
        )
    assert rows == [{"role": "member", "revoked": True}, {"role": "admin", "revoked": False}]


async def test_links_of_a_suspended_organization_are_gone(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, "suspended@example.org")
    await set_status(system_context(tenant_a.owner_ctx.tenant), "suspended")
    response = await client.get(link)
    assert response.status_code == 410
    assert "This invitation link is not valid any more." in response.text


@pytest.mark.parametrize(
    "link",
    [
        "/invitations/{slug}/not-a-real-token",
        "/invitations/{slug}/" + "x" * 2000,
        "/invitations/no-such-organization/whatever",
        "/invitations/{slug}/nul%00byte",
        "/invitations/nul%00byte/whatever",
    ],
)
async def test_made_up_links_are_gone(
    client: httpx.AsyncClient, shared: TenantFixture, link: str
) -> None:
    response = await client.get(link.format(slug=shared.slug))
    assert response.status_code == 410
    assert "This invitation link is not valid any more." in response.text


async def test_signing_in_from_the_invitation_comes_back_to_it(
    browser: Browser, app: Litestar, tenant_a: TenantFixture
) -> None:
    person = await make_user("Returning Person")
    await browser.login(tenant_a.owner)
    link = await _invite(browser, tenant_a, person.email)
    async with browser_on(app) as invitee:
        page = await invitee.get(link)
        sign_in = re.search(r'href="(/login\?next=[^"]+)"', page.text)
        assert sign_in
        response = await invitee.post(
            "/login",
            {"email": person.email, "password": PASSWORD, "next": link},
            page=sign_in.group(1),
        )
        assert response.headers["location"] == link
