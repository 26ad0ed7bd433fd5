"""The seat ledger over HTTP: the usage page (figures, chart and its table, packs) for admins
only and for their own organization only, and the participant turned away for want of seats
on the campaign's own page, with nothing written."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from litestar import Litestar

from billing import seats
from billing.seats import SeatDay, SeatPackFields
from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from core.database import fetch
from tests.api.conftest import app, browser_on  # noqa: F401 - fixture
from tests.billing.plans import STAFF
from tests.billing.test_seats import subscribe_to
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant
from web.charts import usage_chart


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


async def test_the_usage_page_shows_the_period_the_chart_its_figures_and_the_packs(
    app: Litestar,  # noqa: F811
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=4)
    await seats.add_seat_pack(
        tenant_a.owner_ctx,
        STAFF,
        SeatPackFields(
            seats=25,
            starts_on=datetime.now(UTC).date() + timedelta(days=30),
            category="public",
            reference="PO-2026-117",
        ),
    )
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Residents", profile_key="digcomp")
    )
    async with browser_on(app) as browser:
        for name in ("Ann", "Ben", "Cid"):
            person = await make_user(f"{name} Resident")
            await browser.login(person)
            started = await browser.post(
                f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}"
            )
            assert started.status_code == 303
        await browser.login(tenant_a.owner)
        page = await browser.get(f"/o/{tenant_a.slug}/billing/usage")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Seats used 3 (75 %)" in text
    assert "Seats available 4" in text
    assert "Seats remaining 1" in text
    assert "new participants are turned away" in text
    assert '<svg role="img" aria-labelledby="usage-chart-title usage-chart-desc"' in page.text
    assert "3 seats used of 4" in text
    assert re.search(r"<td>3 \(\+3\)</td>", page.text)  # the day's row in the table
    assert "PO-2026-117" in text
    assert "not yet valid" in text
    assert "public rate" in text


async def test_the_usage_page_is_for_admins_of_their_own_organization(
    app: Litestar,  # noqa: F811
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await subscribe_to(tenant_b, policy="warn", seats=2)
    async with browser_on(app) as browser:
        await browser.login(tenant_a.member)
        assert (await browser.get(f"/o/{tenant_a.slug}/billing/usage")).status_code == 403
        await browser.login(tenant_a.owner)
        assert (await browser.get(f"/o/{tenant_b.slug}/billing/usage")).status_code == 404
        own = await browser.get(f"/o/{tenant_a.slug}/billing/usage")
        assert own.status_code == 200
        assert "has no subscription" in own.text
        assert "PO-" not in own.text


async def test_a_participant_turned_away_sees_why_on_the_campaign_page_and_nothing_is_written(
    app: Litestar,  # noqa: F811
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=1)
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Residents", profile_key="digcomp")
    )
    async with browser_on(app) as browser:
        first = await make_user("Ann Resident")
        await browser.login(first)
        started = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
        assert started.status_code == 303
        late = await make_user("Ben Resident")
        await browser.login(late)
        posted = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
        # Post/Redirect/Get (issue 14, defect 7): the campaign's page says why, as a 403.
        assert posted.status_code == 303
        assert posted.headers["location"] == f"/c/{campaign.code}"
        refused = await browser.get(posted.headers["location"])
        reloaded = await browser.get(posted.headers["location"])
    assert refused.status_code == 403
    assert "This organization has no seat left for new participants." in _text(refused.text)
    assert reloaded.status_code == 200  # told once; a reload is the campaign's page again
    async with as_tenant(tenant_a.id):
        learners = await fetch("SELECT name FROM learner WHERE tenant_id = $1", tenant_a.id)
    assert [row["name"] for row in learners] == ["Ann Resident"]


def test_the_chart_draws_the_capacity_and_lists_only_days_with_new_seats() -> None:
    day = datetime(2026, 3, 1, tzinfo=UTC).date()
    days = seats.daily_usage({day: 2, day + timedelta(days=2): 3}, day, day + timedelta(days=3))
    assert [(d.consumed, d.used) for d in days] == [(2, 2), (0, 2), (3, 5), (0, 5)]
    chart = usage_chart(days, 10, "en")
    assert chart is not None
    # English is British English (core.l10n.BABEL_LOCALES): day, month, year
    assert [label for label, _ in chart.days] == ["01/03/2026", "03/03/2026"]
    assert chart.first == "1 March 2026"
    assert [value for _, value in chart.y_ticks] == [0, 5, 10]
    assert chart.capacity_y == chart.y_ticks[-1][0]
    assert len(chart.used_line.split()) == 4
    single = usage_chart([SeatDay(day, 0, 0)], 0, "en")
    assert single is not None
    assert len(single.used_line.split()) == 2  # a visible segment, not a dot
    assert usage_chart([], 3, "en") is None


async def test_admins_see_the_seat_banner_on_every_console_page_and_members_do_not(
    app: Litestar,  # noqa: F811
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await subscribe_to(tenant_a, policy="warn", seats=1)
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Residents", profile_key="digcomp")
    )
    banner = "Your organization uses 2 seats of the 1 it has for this period"
    async with browser_on(app) as browser:
        await browser.login(tenant_a.owner)
        assert banner not in _text((await browser.get(f"/o/{tenant_a.slug}/")).text)
        for name in ("Ann", "Ben"):
            await browser.login(await make_user(f"{name} Resident"))
            started = await browser.post(
                f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}"
            )
            assert started.status_code == 303
        await browser.login(tenant_a.owner)
        for page in ("/", "/campaigns", "/members"):
            response = await browser.get(f"/o/{tenant_a.slug}{page}")
            assert banner in _text(response.text), page
        await browser.login(tenant_a.member)
        assert banner not in _text((await browser.get(f"/o/{tenant_a.slug}/")).text)
        await browser.login(tenant_b.owner)
        assert "seats of the" not in _text((await browser.get(f"/o/{tenant_b.slug}/")).text)
