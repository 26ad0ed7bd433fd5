"""A tenant's page in the back office and its tabs: each reads the tenant through its own
services in a read-only context, writes nothing (not even an audit event), shows the action
links only to staff who hold their permission, and never shows another tenant's data."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from billing import invoices
from billing.profiles import ProfileFields, save_profile
from billing.seats import SeatPackFields, add_seat_pack
from billing.subscriptions import subscribe
from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from core.database import SystemScope, fetch, tenant_transaction
from sso.domains import add_domain
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser, audit_actions
from tests.billing.plans import STAFF, licence_plan
from tests.conftest import TenantFixture

TABS = ("", "/subscription", "/invoices", "/members", "/sso", "/campaigns", "/audit")


async def _bill(tenant: TenantFixture, legal_name: str) -> None:
    """A licence paid from the first day, its billing details, its first invoice and a
    seat pack."""
    plan = await licence_plan()
    ctx = tenant.owner_ctx
    now = datetime.now(UTC)
    await subscribe(ctx, plan.code, at=now, trial=False)
    await save_profile(
        ctx,
        ProfileFields(
            legal_name=legal_name,
            country="FR",
            billing_email="billing@example.org",
            address_line1="1 rue de la Paix",
            city="Paris",
        ),
        po_number=f"PO-{legal_name}",
    )
    await invoices.bill_period(ctx, at=now, locale="en")
    await add_seat_pack(
        ctx, STAFF, SeatPackFields(seats=50, starts_on=now.date(), reference=f"REF-{legal_name}")
    )


@pytest.fixture
async def billed(tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    await _bill(tenant_a, "Alpha Legal SARL")
    await _bill(tenant_b, "Beta Legal GmbH")
    await add_domain(tenant_a.owner_ctx, f"alpha-{tenant_a.slug}.example.org")
    await add_domain(tenant_b.owner_ctx, f"beta-{tenant_b.slug}.example.org")
    await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Alpha survey", profile_key="digcomp")
    )
    await create_campaign(
        tenant_b.owner_ctx, CampaignFields(name="Beta survey", profile_key="digcomp")
    )


async def _invoice_number(tenant: TenantFixture) -> str:
    async with tenant_transaction(SystemScope(tenant.id)):
        rows = await fetch("SELECT number FROM invoice WHERE tenant_id = $1", tenant.id)
    return str(rows[0]["number"])


async def test_every_tab_shows_the_tenant_and_writes_nothing(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, billed: None
) -> None:
    before = await audit_actions(tenant_a.id)
    base = f"/admin/tenants/{tenant_a.id}"
    pages = {}
    for tab in TABS:
        response = await am_browser.get(base + tab)
        assert response.status_code == 200, (tab, response.text)
        assert 'aria-current="page"' in response.text
        pages[tab] = response.text
    assert await audit_actions(tenant_a.id) == before
    assert "Alpha Legal SARL" in pages[""]
    assert tenant_a.slug in pages[""]
    assert "Licence" in pages["/subscription"]
    assert "REF-Alpha Legal SARL" in pages["/subscription"]
    assert "<svg" in pages["/subscription"]
    assert "PO-Alpha Legal SARL" in pages["/subscription"]
    assert await _invoice_number(tenant_a) in pages["/invoices"]
    assert tenant_a.owner.email in pages["/members"]
    assert tenant_a.member.email in pages["/members"]
    assert "Alpha survey" in pages["/campaigns"]
    assert f"alpha-{tenant_a.slug}.example.org" in pages["/sso"]
    assert "organization.created" in pages["/audit"]
    # tenant B's data never shows on tenant A's pages
    beta = [
        tenant_b.slug,
        tenant_b.owner.email,
        tenant_b.member.email,
        "Beta Legal GmbH",
        "REF-Beta Legal GmbH",
        "Beta survey",
        f"beta-{tenant_b.slug}.example.org",
        await _invoice_number(tenant_b),
    ]
    for tab, html in pages.items():
        assert [text for text in beta if text in html] == [], tab


async def test_account_managers_see_every_action_link(
    am_browser: Browser, tenant_a: TenantFixture, billed: None
) -> None:
    base = f"/admin/tenants/{tenant_a.id}"
    html = (await am_browser.get(base)).text
    for action in ("plan", "trial", "seat-pack", "discount", "suspend", "close", "features"):
        assert f'href="{base}/actions/{action}"' in html, action
    assert f'href="{base}/actions/impersonate"' in html
    assert f'href="{base}/actions/reactivate"' not in html  # not suspended
    invoices_page = (await am_browser.get(base + "/invoices")).text
    assert f"{base}/actions/payment/" in invoices_page
    assert f"{base}/actions/credit-note/" in invoices_page
    assert "/remove" in (await am_browser.get(base + "/subscription")).text


async def test_support_reads_but_sees_only_the_impersonation_link(
    browser: Browser, support: StaffFixture, tenant_a: TenantFixture, billed: None
) -> None:
    await staff_login(browser, support)
    base = f"/admin/tenants/{tenant_a.id}"
    for tab in TABS:
        response = await browser.get(base + tab)
        assert response.status_code == 200, tab
        assert f"{base}/actions/impersonate" in response.text
        for action in (
            "plan",
            "seat-pack",
            "suspend",
            "close",
            "features",
            "payment",
            "credit-note",
        ):
            assert f"{base}/actions/{action}" not in response.text, (tab, action)


async def test_an_unknown_tenant_is_a_404(am_browser: Browser) -> None:
    for tab in TABS:
        assert (await am_browser.get(f"/admin/tenants/{uuid4()}{tab}")).status_code == 404


async def test_content_editors_are_refused_and_tenant_owners_told_nothing(
    browser: Browser, content_editor: StaffFixture, tenant_a: TenantFixture
) -> None:
    await staff_login(browser, content_editor)
    for tab in TABS:
        assert (await browser.get(f"/admin/tenants/{tenant_a.id}{tab}")).status_code == 403
    await browser.post("/logout", {}, page="/admin/second-factor")
    await browser.login(tenant_a.owner)
    for tab in TABS:
        assert (await browser.get(f"/admin/tenants/{tenant_a.id}{tab}")).status_code == 404


async def test_a_closed_tenant_shows_its_retention(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    async with tenant_transaction(SystemScope(tenant_a.id)):
        await fetch(
            "UPDATE organization SET status = 'closed', closed_at = now(),"
            """ features = '{"webhooks": false}',"""
            " delete_after = now() + interval '90 days' WHERE id = $1 RETURNING id",
            tenant_a.id,
        )
    html = (await am_browser.get(f"/admin/tenants/{tenant_a.id}")).text
    assert "Its data is kept until" in html
    assert "Webhooks</th><td>off · switched for this tenant" in html
    assert "API access (API tokens)</th><td>on · by default" in html
    assert f"/admin/tenants/{tenant_a.id}/actions/reactivate" in html
    assert f"/admin/tenants/{tenant_a.id}/actions/close" not in html


async def test_a_forged_audit_cursor_is_refused_not_a_crash(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await am_browser.get(f"/admin/tenants/{tenant_a.id}/audit?cursor=forged")
    assert 400 <= response.status_code < 500
