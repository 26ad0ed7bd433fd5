"""Read-only impersonation (admin.impersonation, web.guards._impersonation): a staff member
views one tenant's console with a banner, writes nothing (the guard refuses, the database
refuses), for a limited time, audited in the tenant's log and in the staff trail."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from litestar import Litestar

from admin import impersonation
from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from core import database
from core.settings import get_settings
from tenants.organizations import SettingsChange, update_settings
from tenants.staff import acting_in_tenant, start_impersonation
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser
from tests.campaigns.test_exports import add_shared_results
from tests.conftest import TenantFixture

REASON = "ticket 1234: owner cannot find the export"


async def _impersonate(browser: Browser, tenant: TenantFixture, reason: str = REASON) -> Any:
    path = f"/admin/tenants/{tenant.id}/actions/impersonate"
    return await browser.post(path, {"reason": reason, "confirm": "yes"}, page=path)


async def _events(tenant: TenantFixture, action: str) -> list[dict[str, Any]]:
    async with database.transaction(tenant.id):
        return [
            dict(r)
            for r in await database.fetch(
                "SELECT actor_kind, actor_user_id, details FROM audit_event"
                " WHERE tenant_id = $1 AND action = $2",
                tenant.id,
                action,
            )
        ]


async def _trail(staff: StaffFixture, action: str, tenant: TenantFixture) -> list[dict[str, Any]]:
    async with database.global_transaction():
        return [
            dict(r)
            for r in await database.fetch(
                "SELECT reason, staff_role FROM staff_audit WHERE staff_user_id = $1"
                " AND action = $2 AND organization_id = $3",
                staff.user.id,
                action,
                tenant.id,
            )
        ]


async def test_an_account_manager_views_the_console_read_only_with_a_banner(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    form = await am_browser.get(f"/admin/tenants/{tenant_a.id}/actions/impersonate")
    assert form.status_code == 200
    assert 'name="reason"' in form.text
    started = await _impersonate(am_browser, tenant_a)
    assert started.status_code == 303
    assert started.headers["location"] == f"/o/{tenant_a.slug}/"
    for path in (f"/o/{tenant_a.slug}", f"/o/{tenant_a.slug}/members"):
        page = await am_browser.get(path)
        assert page.status_code == 200, path
        assert "impersonation-banner" in page.text
        assert "Read-only view as Jalon staff" in page.text
        assert REASON in page.text
    [event] = await _events(tenant_a, "impersonation.started")
    assert event["actor_kind"] == "staff"
    assert event["actor_user_id"] == account_manager.user.id
    assert REASON in str(event["details"])
    [entry] = await _trail(account_manager, "impersonation.started", tenant_a)
    assert entry["reason"] == REASON
    assert entry["staff_role"] == "account_manager"

    viewing_id = am_browser.client.cookies["jalon_session"]
    stopped = await am_browser.post(
        "/admin/impersonation/stop", {}, page=f"/o/{tenant_a.slug}/members"
    )
    assert stopped.status_code == 303
    # a new session id: a request still running with the old one cannot write the view back
    assert am_browser.client.cookies["jalon_session"] != viewing_id
    replayed = await am_browser.client.get(
        f"/o/{tenant_a.slug}/members", headers={"cookie": f"jalon_session={viewing_id}"}
    )
    assert replayed.status_code != 200
    assert stopped.headers["location"] == f"/admin/tenants/{tenant_a.id}"
    assert len(await _events(tenant_a, "impersonation.stopped")) == 1
    assert await _trail(account_manager, "impersonation.stopped", tenant_a)
    assert (await am_browser.get(f"/o/{tenant_a.slug}/members")).status_code == 404


async def test_a_console_form_posted_while_impersonating_is_refused_and_writes_nothing(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    await _impersonate(am_browser, tenant_a)
    settings_page = f"/o/{tenant_a.slug}/settings"
    assert (await am_browser.get(settings_page)).status_code == 200
    refused = await am_browser.post(
        settings_page, {"name": "Hijacked", "default_locale": "en"}, page=settings_page
    )
    assert refused.status_code == 403
    assert "read-only" in refused.text
    invite = await am_browser.post(
        f"/o/{tenant_a.slug}/members/invite",
        {"email": f"x-{uuid4().hex[:6]}@example.org", "role": "member"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert invite.status_code == 403
    async with database.transaction(tenant_a.id):
        [org] = await database.fetch("SELECT name FROM organization WHERE id = $1", tenant_a.id)
        invitations = await database.fetch(
            "SELECT 1 FROM invitation WHERE tenant_id = $1", tenant_a.id
        )
    assert org["name"] == "Alpha Org"
    assert not invitations


async def test_the_database_refuses_a_write_in_the_read_only_context(
    account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    ctx = replace(acting_in_tenant(account_manager.ctx, tenant_a.owner_ctx.tenant), read_only=True)
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await update_settings(ctx, SettingsChange("Written anyway", "en", None))


async def test_an_expired_impersonation_ends(
    am_browser: Browser, tenant_a: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _impersonate(am_browser, tenant_a)
    assert (await am_browser.get(f"/o/{tenant_a.slug}/members")).status_code == 200
    # A view that lasts no time at all: it has ended by the next request.
    short = replace(get_settings(), impersonation_minutes=0)
    monkeypatch.setattr(impersonation, "get_settings", lambda: short)
    await _impersonate(am_browser, tenant_a)
    after = await am_browser.get(f"/o/{tenant_a.slug}/members")
    assert after.status_code == 404  # no longer a view: the staff member is not a member
    assert "impersonation-banner" not in after.text


async def test_impersonating_tenant_a_opens_nothing_of_tenant_b(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await _impersonate(am_browser, tenant_a)
    for path in (f"/o/{tenant_b.slug}", f"/o/{tenant_b.slug}/members", f"/o/{tenant_b.slug}/audit"):
        response = await am_browser.get(path)
        assert response.status_code == 404, path
        assert tenant_b.owner.email not in response.text


async def test_bad_input_starts_nothing(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    path = f"/admin/tenants/{tenant_a.id}/actions/impersonate"
    no_reason = await am_browser.post(path, {"reason": " ", "confirm": "yes"}, page=path)
    assert no_reason.status_code == 422
    assert "Give the reason" in no_reason.text
    unconfirmed = await am_browser.post(path, {"reason": REASON}, page=path)
    assert unconfirmed.status_code == 422
    assert REASON in unconfirmed.text  # what was typed stays
    assert (await am_browser.get(f"/o/{tenant_a.slug}/members")).status_code == 404
    assert not await _events(tenant_a, "impersonation.started")
    unknown = f"/admin/tenants/{uuid4()}/actions/impersonate"
    assert (await am_browser.get(unknown)).status_code == 404


async def test_a_content_editor_cannot_impersonate_and_a_tenant_owner_is_told_nothing(
    browser: Browser, content_editor: StaffFixture, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await staff_login(browser, content_editor)
    path = f"/admin/tenants/{tenant_a.id}/actions/impersonate"
    assert (await browser.get(path)).status_code == 403
    refused = await browser.post(path, {"reason": REASON, "confirm": "yes"}, page="/admin/content")
    assert refused.status_code == 403
    assert (await browser.get(f"/o/{tenant_a.slug}/members")).status_code == 404
    assert not await _events(tenant_a, "impersonation.started")

    await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
    owner = Browser(browser.client)
    await owner.login(tenant_b.owner)
    assert (await owner.get(path)).status_code == 404
    forged = await owner.post(path, {"reason": REASON, "confirm": "yes"}, page="/o/")
    assert forged.status_code == 404
    assert not await _events(tenant_a, "impersonation.started")


async def test_every_console_page_opens_read_only_without_a_server_error(
    am_browser: Browser, tenant_a: TenantFixture, app: Litestar
) -> None:
    """Pages that write as they are read (a last-seen time, say) must not break under a
    READ ONLY transaction: each GET page of the console answers below 500 (the client's
    hook fails the test on any 500 as well)."""
    await _impersonate(am_browser, tenant_a)
    pages = sorted(
        {
            re.sub(r"\{slug(:str)?\}", tenant_a.slug, route.path)
            for route in app.routes
            if route.path.startswith("/o/{slug")
            and "GET" in getattr(route, "methods", ())
            and set(route.path_parameters) == {"slug"}
        }
    )
    assert len(pages) > 10
    answered = {}
    for path in pages:
        response = await am_browser.client.get(path)
        answered[path] = response.status_code
        assert response.status_code < 500, path
    refused = {path: status for path, status in answered.items() if status >= 400}
    assert refused == {}  # every page reads as the owner's would


async def test_the_tenant_audit_log_shows_the_service_provider_and_the_reason(
    browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await start_impersonation(account_manager.ctx, tenant_a.id, REASON)
    await browser.login(tenant_a.owner)
    log = await browser.get(f"/o/{tenant_a.slug}/audit")
    assert log.status_code == 200
    assert "Jalon (service provider)" in log.text
    assert account_manager.user.email in log.text
    assert f"Reason: {REASON}" in log.text


async def test_a_campaign_and_its_results_read_while_impersonating(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Read me", profile_key="digcomp")
    )
    await add_shared_results(tenant_a.id, campaign.id, 2)
    await _impersonate(am_browser, tenant_a)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    page = await am_browser.get(base)
    assert page.status_code == 200
    assert "Read me" in page.text
    assert "impersonation-banner" in page.text
    for path in (f"{base}/edit", f"{base}/results.csv", f"{base}/results.xlsx"):
        assert (await am_browser.client.get(path)).status_code < 500, path
    closed = await am_browser.post(f"{base}/close", {"confirm": "yes"}, page=base)
    assert closed.status_code == 403


async def test_opening_another_view_ends_the_first(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await _impersonate(am_browser, tenant_a)
    await _impersonate(am_browser, tenant_b, "ticket 99: the second organization")
    assert len(await _events(tenant_a, "impersonation.stopped")) == 1
    assert (await am_browser.get(f"/o/{tenant_a.slug}/members")).status_code == 404
    assert (await am_browser.get(f"/o/{tenant_b.slug}/members")).status_code == 200


async def test_opening_a_second_view_records_the_first_ones_end_before_the_new_start(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    assert (await _impersonate(am_browser, tenant_a)).status_code == 303
    assert (await _impersonate(am_browser, tenant_b)).status_code == 303
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT action, organization_id FROM staff_audit WHERE staff_user_id = $1"
            " AND action LIKE 'impersonation.%' ORDER BY occurred_at, id",
            account_manager.user.id,
        )
    assert [(r["action"], r["organization_id"]) for r in rows] == [
        ("impersonation.started", tenant_a.id),
        ("impersonation.stopped", tenant_a.id),
        ("impersonation.started", tenant_b.id),
    ]
