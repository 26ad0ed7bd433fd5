"""Campaigns in the console over HTTP: the list and the creation form, a campaign's page with
its link and statistics, and its actions; who may do what."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from uuid import uuid4

from campaigns.campaign_fields import CampaignFields
from campaigns.participation.landing import participant_context
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from campaigns.service import create_campaign
from core import database
from tenants.accounts import create_user
from tenants.context import Actor
from tests.api.conftest import Browser, audit_actions
from tests.api.test_participant import shorten
from tests.campaigns.test_exports import add_shared_results
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

FORM = {
    "name": "Spring check",
    "type": "assessment",
    "target_profile": "catalogue:digcomp",
    "locales": ["fr", "en"],
    "landing_text": "Hello!",
    "external_id_label": "",
    "external_id_format": "text",
    "opens_at": "",
    "closes_at": "",
    "retake_delay_days": "0",
    "consumes_seat": "yes",
}


async def _campaigns(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT id, name, status, code FROM campaign WHERE tenant_id = $1 ORDER BY created_at",
            tenant.id,
        )


async def test_an_owner_creates_a_campaign_and_sees_its_link(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/campaigns"
    listing = await browser.get(page)
    assert listing.status_code == 200
    assert "No campaign yet." in listing.text
    response = await browser.post(page, FORM, page=page)
    assert response.status_code == 303
    [campaign] = await _campaigns(tenant_a)
    assert response.headers["location"] == f"{page}/{campaign['id']}"
    shown = await browser.get(response.headers["location"])
    assert shown.status_code == 200
    assert f"The campaign Spring check is open. Its code is {campaign['code']}." in shown.text
    # On JALON_BASE_URL, as the invitation mails give it, whatever Host the request named.
    assert f"http://127.0.0.1:8000/c/{campaign['code']}" in shown.text
    spoofed = await browser.get(response.headers["location"], headers={"host": "evil.example"})
    assert f"http://127.0.0.1:8000/c/{campaign['code']}" in spoofed.text
    assert "evil.example" not in spoofed.text
    assert "No participant has shared results yet" in shown.text
    assert "Spring check" in (await browser.get(page)).text
    assert (await audit_actions(tenant_a.id))[-1] == "campaign.created"


async def test_bad_campaign_fields_are_shown_next_to_the_field_and_kept(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/campaigns"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "This field is required."),
        ({"target_profile": "catalogue:nothing"}, "Choose one of the offered target profiles."),
        ({"target_profile": "bogus"}, "Choose one of the offered target profiles."),
        ({"closes_at": "30/12/2030"}, "Enter a date as YYYY-MM-DD."),
        ({"closes_at": "2001-01-01"}, "The closing date is already past."),
        ({"closes_at": "9999-12-31"}, "Enter a date between the years 2000 and 2100."),
        ({"opens_at": "0001-01-01"}, "Enter a date between the years 2000 and 2100."),
        ({"retake_delay_days": "-3"}, "Enter a number of days."),
        ({"locales": []}, "Choose at least one language."),
        ({"type": "exam"}, ""),
    ]
    for change, message in cases:
        response = await browser.post(page, {**FORM, "name": "Kept name", **change}, page=page)
        assert response.status_code == 422, change
        assert message in response.text
        assert 'aria-invalid="true"' in response.text or change == {"locales": []}
        if "name" not in change:
            assert 'value="Kept name"' in response.text
    assert await _campaigns(tenant_a) == []


async def test_a_plain_member_reads_campaigns_but_cannot_create_or_change_them(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Read only", profile_key="digcomp")
    )
    await browser.login(tenant_a.member)
    page = f"/o/{tenant_a.slug}/campaigns"
    listing = await browser.get(page)
    assert "Read only" in listing.text
    assert "New campaign" not in listing.text
    shown = await browser.get(f"{page}/{campaign.id}")
    assert shown.status_code == 200
    assert "Close the campaign" not in shown.text
    before = await audit_actions(tenant_a.id)
    for action in ("close", "archive", "duplicate"):
        response = await browser.post(f"{page}/{campaign.id}/{action}", page=page)
        assert response.status_code == 403
    assert (await browser.post(page, FORM, page=page)).status_code == 403
    assert await audit_actions(tenant_a.id) == before


async def test_close_duplicate_reopen_and_archive(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Lifecycle", profile_key="digcomp")
    )
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    response = await browser.post(f"{page}/close", {"confirm": "yes"}, page=page)
    assert response.headers["location"] == page
    shown = await browser.get(page)
    assert "The campaign is closed: nobody new can start it." in shown.text
    assert "Open the campaign" in shown.text

    response = await browser.post(f"{page}/duplicate", page=page)
    assert response.status_code == 303
    copy = response.headers["location"]
    assert copy != page
    shown = await browser.get(copy)
    assert "This is a draft copy of the campaign, with a new code." in shown.text
    assert "Draft" in shown.text

    await browser.post(f"{page}/activate", page=page)
    assert "The campaign is open." in (await browser.get(page)).text
    await browser.post(f"{page}/archive", {"confirm": "yes"}, page=page)
    shown = await browser.get(page)
    assert "The campaign is archived: its link no longer works." in shown.text
    # An archived campaign changes no more: the refusal is shown on its page.
    refused = await browser.post(f"{page}/close", {"confirm": "yes"}, page=page)
    assert refused.status_code == 409
    assert "An archived campaign cannot be changed." in refused.text
    assert (await browser.get(f"/c/{campaign.code}")).status_code == 410
    assert [a for a in await audit_actions(tenant_a.id) if a.startswith("campaign.")] == [
        "campaign.created",
        "campaign.closed",
        "campaign.duplicated",
        "campaign.activated",
        "campaign.archived",
    ]


async def test_the_campaign_page_counts_and_charts_shared_results(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    from campaigns.participation.answering import answer, current_challenge

    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Counted", profile_key="digcomp")
    )
    await shorten(tenant_a.id, campaign.id, 2)
    for sharing in (True, False):
        person = await make_user("Counted Person")
        ctx = participant_context(tenant_a.owner_ctx.tenant, Actor(kind="user", user_id=person.id))
        participation = await start_or_resume(ctx, campaign.id)
        view = await current_challenge(ctx, participation.id)
        while view is not None:
            view = (
                await answer(ctx, participation.id, view.challenge_id, skipped=True)
            ).next_challenge
        if sharing:
            await share(ctx, participation.id, consent=True)
    await browser.login(tenant_a.member)
    shown = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}")
    found = re.findall(
        r'<span class="value">([^<]+)</span><span class="label">([^<]+)<', shown.text
    )
    stats = {label: value for value, label in found}
    assert stats["started"] == "2"
    assert stats["completed"] == "2"
    assert stats["shared their results"] == "1"
    assert "<svg" in shown.text
    assert "Learners per level, over shared results" in shown.text
    listed = await browser.get(f"/o/{tenant_a.slug}/campaigns")
    row = re.search(rf'campaigns/{campaign.id}">Counted</a></th>(.*?)</tr>', listed.text, re.S)
    assert row is not None
    assert re.findall(r"<td>([^<]*)</td>", row.group(1)) == ["Open", "2"]  # status, learners


async def test_an_unknown_or_mangled_campaign_id_is_not_found(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/campaigns"
    assert (await browser.get(f"{base}/not-a-uuid")).status_code == 404
    assert (await browser.get(f"{base}/00000000-0000-0000-0000-000000000000")).status_code == 404
    response = await browser.post(f"{base}/not-a-uuid/close", page=base)
    assert response.status_code == 404


async def _take_and_share(tenant: TenantFixture, campaign_id: Any, name: str) -> None:
    from campaigns.participation.answering import answer, current_challenge

    person = await create_user(f"p-{uuid4().hex[:8]}@example.org", name, None, "en")
    ctx = participant_context(tenant.owner_ctx.tenant, Actor(kind="user", user_id=person.id))
    participation = await start_or_resume(ctx, campaign_id)
    view = await current_challenge(ctx, participation.id)
    while view is not None:
        view = (await answer(ctx, participation.id, view.challenge_id, skipped=True)).next_challenge
    await share(ctx, participation.id, consent=True)


async def test_shared_results_export_as_csv_for_spreadsheets(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Exported", profile_key="digcomp")
    )
    await shorten(tenant_a.id, campaign.id, 2)
    await _take_and_share(tenant_a, campaign.id, '=HYPERLINK("http://evil")')
    await browser.login(tenant_a.member)  # every member reads results
    response = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"{campaign.code}-results.csv" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, [row] = rows[0], rows[1:]
    assert header[:3] == ["Name", "Email address", "External identifier"]
    assert "1.1 Browsing, searching and filtering data, information and digital content" in header
    assert len(header) == 9 + 21 + 5  # fixed columns, competences, areas
    assert row[0].startswith("'=")  # a spreadsheet will not run it as a formula
    assert len(row) == len(header)


async def test_the_export_streams_every_shared_row(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """1,200 shared results (more than the cursor's prefetch) all reach the file."""
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Large", profile_key="digcomp")
    )
    await add_shared_results(tenant_a.id, campaign.id, 1200)
    await browser.login(tenant_a.owner)
    response = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 1200
    assert {row[9] for row in rows[1:]} == {"3"}  # 1.1's level


async def test_another_tenants_export_is_not_found(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_b.owner_ctx, CampaignFields(name="Theirs", profile_key="digcomp")
    )
    await browser.login(tenant_a.owner)
    theirs = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv")
    assert theirs.status_code == 404
