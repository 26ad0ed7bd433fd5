"""The console's invoices page, `/o/{slug}/billing/invoices`: the list, each PDF, the
Factur-X XML of a public buyer's invoice; admins only; other organizations' ids a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from litestar import Litestar

from api.app import create_app
from billing import invoices
from billing.subscriptions import subscribe
from core.settings import Settings
from tests.api.conftest import Browser, browser_on
from tests.api.running import running
from tests.billing.plans import licence_plan, per_seat_plan
from tests.billing.test_facturx import CITY_SIRET
from tests.billing.test_invoices import NOW, set_profile, system
from tests.conftest import TenantFixture


@pytest.fixture(scope="module")
async def console_app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    async with running(create_app(settings)) as application:
        yield application


@pytest.fixture
async def console(console_app: Litestar) -> AsyncIterator[Browser]:
    async with browser_on(console_app) as browser:
        yield browser


async def billed(tenant: TenantFixture) -> invoices.Invoice:
    plan = await per_seat_plan(2500, trial_days=0)
    await subscribe(tenant.owner_ctx, plan.code, at=NOW, quantity=2, trial=False)
    invoice = await invoices.bill_period(tenant.owner_ctx, at=NOW)
    assert invoice is not None
    return invoice


async def test_admins_list_and_download_their_invoices(
    tenant_a: TenantFixture, console: Browser
) -> None:
    invoice = await billed(tenant_a)
    note = await invoices.credit_invoice(system(tenant_a), invoice.id, reason="test")
    await console.login(tenant_a.owner)
    page = await console.get(f"/o/{tenant_a.slug}/billing/invoices")
    assert page.status_code == 200
    assert invoice.number is not None
    assert note.number is not None
    assert invoice.number in page.text
    assert note.number in page.text
    assert "€60.00" in page.text
    assert f"/billing/invoices/{invoice.id}.pdf" in page.text
    assert ".xml" not in page.text  # not a public buyer
    download = await console.get(f"/o/{tenant_a.slug}/billing/invoices/{invoice.id}.pdf")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    assert f'filename="{invoice.number}.pdf"' in download.headers["content-disposition"]
    for missing in (f"{invoice.id}.xml", f"{invoice.id}.txt", f"{uuid4()}.pdf", "nothing"):
        response = await console.get(f"/o/{tenant_a.slug}/billing/invoices/{missing}")
        assert response.status_code == 404


async def test_a_public_buyer_downloads_the_facturx_xml(
    tenant_a: TenantFixture, console: Browser
) -> None:
    plan = await licence_plan(500_000, seats=50)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, trial=False)
    await set_profile(tenant_a, buyer_kind="public", siret=CITY_SIRET, chorus_service_code="DSI")
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    await console.login(tenant_a.owner)
    page = await console.get(f"/o/{tenant_a.slug}/billing/invoices")
    assert f"/billing/invoices/{invoice.id}.xml" in page.text
    xml = await console.get(f"/o/{tenant_a.slug}/billing/invoices/{invoice.id}.xml")
    assert xml.status_code == 200
    assert xml.headers["content-type"].startswith("application/xml")
    assert CITY_SIRET.encode() in xml.content


async def test_members_and_other_organizations_see_no_invoice(
    tenant_a: TenantFixture, tenant_b: TenantFixture, console: Browser
) -> None:
    theirs = await billed(tenant_b)
    await console.login(tenant_a.member)
    assert (await console.get(f"/o/{tenant_a.slug}/billing/invoices")).status_code == 403
    await console.login(tenant_a.owner)
    for path in (
        f"/o/{tenant_a.slug}/billing/invoices/{theirs.id}.pdf",
        f"/o/{tenant_b.slug}/billing/invoices/{theirs.id}.pdf",
        f"/o/{tenant_b.slug}/billing/invoices",
    ):
        assert (await console.get(path)).status_code == 404
    page = await console.get(f"/o/{tenant_a.slug}/billing/invoices")
    assert theirs.number is not None
    assert theirs.number not in page.text
    assert "No invoice yet." in page.text
