"""Changing one's password in place, over HTTP (issue 14, gap 9): on the account page, the
current password and the new one twice; every error at once; the person's other sessions
end and this one goes on (ADR 0027); throttled as sign-in is; in the audit log of each of
their organizations, in the password's own transaction, and told by mail."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from litestar import Litestar

from core import database
from core.settings import get_settings
from tenants import accounts
from tenants.account_events import record_password_change
from tenants.context import Actor
from tenants.members import add_member
from tests.api.conftest import PASSWORD, Browser, audit_actions, browser_on
from tests.conftest import TenantFixture, make_tenant, make_user
from tests.db import as_tenant
from tests.mail import last_link

NEW = "a brand new passphrase"


@pytest.fixture(autouse=True)
async def forget_failures(app: Litestar) -> AsyncIterator[None]:
    """The failed attempts these tests make count against the test client's address, which
    every test shares: forgotten afterwards, so that later sign-ins are not throttled."""
    yield
    await app.state.limiter.reset("login:ip:127.0.0.1")


async def _change(
    browser: Browser, current: str, new: str, confirm: str | None = None
) -> httpx.Response:
    return await browser.post(
        "/account/password",
        {"current_password": current, "password": new, "password_confirm": confirm or new},
        page="/account",
    )


def _errors(html: str) -> list[str]:
    return re.findall(r'<p class="field-error" id="f-([a-z_]+)-error">', html)


async def test_the_account_page_offers_the_form(browser: Browser, tenant_a: TenantFixture) -> None:
    await browser.login(tenant_a.member)
    page = await browser.get("/account")
    assert 'action="/account/password"' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert page.text.count('autocomplete="new-password"') == 2


async def test_a_wrong_current_password_is_refused_clearly(
    app: Litestar, browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    refused = await _change(browser, "not my password", NEW)
    assert refused.status_code == 422
    assert "The current password is incorrect." in refused.text
    assert _errors(refused.text) == ["current_password"]
    assert 'aria-invalid="true"' in refused.text
    assert "not my password" not in refused.text  # never typed back into the page
    # Nothing changed: the old password still signs in.
    async with browser_on(app) as other:
        await other.login(tenant_a.member)


async def test_a_weak_and_mismatched_password_reports_both_errors(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    refused = await _change(browser, PASSWORD, "short", "shorter")
    assert refused.status_code == 422
    assert "Choose a password of at least 10 characters." in refused.text
    assert "The two passwords differ." in refused.text
    assert _errors(refused.text) == ["password", "password_confirm"]
    everything = await _change(browser, "wrong", "short", "shorter")
    assert _errors(everything.text) == ["current_password", "password", "password_confirm"]


async def test_success_signs_out_the_other_session_and_keeps_this_one(
    app: Litestar, browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await make_user("Changing Person")
    await add_member(tenant_a.owner_ctx, person, "member")
    async with browser_on(app) as laptop:
        await laptop.login(person)
        await browser.login(person)
        before = await audit_actions(tenant_a.id)
        cookie_before = browser.client.cookies.get("jalon_session")
        done = await _change(browser, PASSWORD, NEW)
        assert done.status_code == 303
        assert done.headers["location"] == "/account"
        # This session goes on, under a new id.
        assert browser.client.cookies.get("jalon_session") != cookie_before
        page = await browser.get("/account")
        assert page.status_code == 200
        assert "Your password has been changed." in page.text
        assert (await browser.get(f"/o/{tenant_a.slug}/")).status_code == 200
        # The other one is over.
        gone = await laptop.get("/account")
        assert gone.status_code in (302, 303)
        assert "/login" in gone.headers["location"]
        # The old password no longer signs in; the new one does.
        old = await laptop.post("/login", {"email": person.email, "password": PASSWORD})
        assert old.status_code == 401
        await laptop.login(person, NEW)
        assert (await laptop.get("/account")).status_code == 200
    assert await audit_actions(tenant_a.id) == [*before, "account.password_changed"]
    link = await last_link(person.email, r"/password/forgot")
    assert link == "/password/forgot"


async def test_failed_attempts_are_throttled_as_sign_ins_are(
    app: Litestar, browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await make_user("Guessed Person")
    await browser.login(person)
    for _ in range(5):
        assert (await _change(browser, "a wrong guess", NEW)).status_code == 422
    blocked = await _change(browser, PASSWORD, NEW)
    assert blocked.status_code == 429
    assert "Too many failed attempts." in blocked.text
    # The same counter as sign-in's: guessing here does not buy more guesses there.
    async with browser_on(app) as other:
        refused = await other.post("/login", {"email": person.email, "password": PASSWORD})
        assert refused.status_code == 429


async def test_a_password_reset_also_ends_the_other_sessions(
    app: Litestar, browser: Browser, db: str
) -> None:
    person = await make_user("Resetting Person")
    async with browser_on(app) as laptop:
        await laptop.login(person)
        await browser.post("/password/forgot", {"email": person.email}, page="/password/forgot")
        link = await last_link(person.email, r"/password/reset/\S+")
        done = await browser.post(link, {"password": NEW, "password_confirm": NEW}, page=link)
        assert done.status_code == 303
        assert (await browser.get("/account")).status_code == 200  # signed in by the reset
        assert (await laptop.get("/account")).status_code in (302, 303)


async def test_a_cut_off_ends_every_session_that_signed_in_before_it(
    app: Litestar, tenant_a: TenantFixture
) -> None:
    """Sessions that signed in before the account's cut-off end on their next request,
    whichever process serves them (the cut-off is read with the account)."""
    person = await make_user("Older Session")
    async with browser_on(app) as old, browser_on(app) as current:
        await old.login(person)
        assert (await old.get("/account")).status_code == 200
        await current.login(person)
        async with database.global_transaction():
            await database.execute(
                "UPDATE user_account SET sessions_valid_after = now() WHERE id = $1", person.id
            )
        assert (await old.get("/account")).status_code in (302, 303)
        assert (await current.get("/account")).status_code in (302, 303)


async def _password_events(tenant: TenantFixture) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            """SELECT actor_label, target_type, target_id, details FROM audit_event
               WHERE tenant_id = $1 AND action = 'account.password_changed'""",
            tenant.id,
        )
    return [{**row, "details": json.loads(row["details"])} for row in rows]


async def test_the_change_is_recorded_once_in_each_of_the_persons_organizations(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    person = await make_user("Twice Member")
    await add_member(tenant_a.owner_ctx, person, "member")
    await add_member(tenant_b.owner_ctx, person, "admin")
    elsewhere = await make_tenant("Gamma")
    await browser.login(person)
    assert (await _change(browser, PASSWORD, NEW)).status_code == 303
    expected = {
        "actor_label": person.email,
        "target_type": "user",
        "target_id": str(person.id),
        "details": {"email": person.email},
    }
    assert await _password_events(tenant_a) == [expected]
    assert await _password_events(tenant_b) == [expected]
    assert await _password_events(elsewhere) == []


async def test_an_audit_write_that_fails_leaves_the_password_unchanged(
    app: Litestar, tenant_a: TenantFixture, tenant_b: TenantFixture, owner_url: str
) -> None:
    """The events are written in the password's transaction: when one organization's
    insert fails (a constraint of the database refuses it), the event already written in the
    other and the password itself are rolled back with it. (Called as the route calls it: a
    request failing so is a 500, which the suite's clients refuse.)"""
    person = await make_user("Unaudited Person")
    await add_member(tenant_a.owner_ctx, person, "member")
    await add_member(tenant_b.owner_ctx, person, "member")
    actor = Actor(kind="user", user_id=person.id, label=person.email)

    async def change() -> None:
        """Change the person's password to NEW, recording it in their organizations."""
        await accounts.change_password(
            person,
            PASSWORD,
            NEW,
            NEW,
            "127.0.0.1",
            app.state.limiter,
            get_settings(),
            record=lambda account: record_password_change(account, actor),
        )

    # The organization written last refuses the event, after the first one took it.
    first, last = sorted([tenant_a, tenant_b], key=lambda tenant: tenant.id)
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute(
            f"""ALTER TABLE audit_event ADD CONSTRAINT test_refuses_password_events
                CHECK (tenant_id <> '{last.id}' OR action <> 'account.password_changed')
                NOT VALID"""
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await change()
    finally:
        await owner.execute(
            "ALTER TABLE audit_event DROP CONSTRAINT IF EXISTS test_refuses_password_events"
        )
        await owner.close()
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT sessions_valid_after FROM user_account WHERE id = $1", person.id
        )
    assert rows[0]["sessions_valid_after"] is None  # no session was ended
    async with browser_on(app) as browser:
        refused = await browser.post("/login", {"email": person.email, "password": NEW})
        assert refused.status_code == 401
        await browser.login(person, PASSWORD)
    assert await _password_events(first) == []
    assert await _password_events(last) == []
    # The same change without the refusal goes through, recorded in both.
    await change()
    assert len(await _password_events(first)) == len(await _password_events(last)) == 1
