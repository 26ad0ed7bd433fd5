"""The organization's own target profiles and the campaign edit form, over HTTP: create, edit
(a new version, running campaigns keep theirs), archive, bad input kept and explained, and a
campaign's fields changed while its code stays."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from campaigns.campaign_fields import CampaignFields
from campaigns.content import current_bank
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.service import create_campaign, get_campaign
from campaigns.target_profiles import list_target_profiles
from tenants.context import Actor
from tests.api.conftest import Browser, audit_actions
from tests.api.test_campaigns_console import FORM
from tests.conftest import TenantFixture, make_user

PROFILE = {
    "name": "Office essentials",
    "description": "For new staff",
    "competences": ["1.1", "4.1"],
    "tubes": ["1.1-search-queries"],
    "max_level_4.1": "3",
    "max_level_1.1": "",
}


async def test_an_owner_makes_a_profile_and_a_campaign_uses_it(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/target-profiles"
    assert "no target profile of its own yet" in (await browser.get(page)).text
    form = await browser.get(f"{page}/new")
    assert form.status_code == 200
    assert 'name="competences" value="2.1"' in form.text  # every competence of the framework
    created = await browser.post(page, PROFILE, page=f"{page}/new")
    assert created.status_code == 303
    [profile] = await list_target_profiles(tenant_a.owner_ctx)
    assert profile.spec.competences == ("1.1", "4.1")
    assert "1.1-search-queries" in profile.spec.tubes
    assert "1.1-web-browsing" not in profile.spec.tubes
    assert dict(profile.spec.max_levels) == {"4.1": 3}
    listing = await browser.get(page)
    assert "Office essentials" in listing.text
    assert await list_target_profiles(tenant_b.owner_ctx) == []
    # a campaign on it freezes version 1
    response = await browser.post(
        f"/o/{tenant_a.slug}/campaigns",
        {**FORM, "target_profile": f"custom:{profile.id}"},
        page=f"/o/{tenant_a.slug}/campaigns",
    )
    assert response.status_code == 303
    campaign_id = response.headers["location"].rsplit("/", 1)[1]
    changed = await browser.post(
        f"{page}/{profile.id}", {**PROFILE, "competences": ["1.1"], "tubes": []}, page=page
    )
    assert changed.status_code == 303
    [profile] = await list_target_profiles(tenant_a.owner_ctx)
    assert (profile.version, profile.spec.competences) == (2, ("1.1",))
    campaign = await get_campaign(tenant_a.owner_ctx, campaign_id)
    assert campaign.profile.competences == ("1.1", "4.1")  # frozen at version 1
    archived = await browser.post(f"{page}/{profile.id}/archive", {}, page=page)
    assert archived.status_code == 303
    assert "Archived" in (await browser.get(page)).text
    actions = await audit_actions(tenant_a.id)
    assert actions.count("target_profile.created") == 1
    assert actions[-2:] == ["target_profile.updated", "target_profile.archived"]


async def test_bad_profiles_are_explained_and_the_form_is_kept(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/target-profiles"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"competences": []}, "Choose at least one competence."),
        ({"competences": ["9.9"]}, "Unknown competence: 9.9."),
        (
            {"tubes": [next(iter(current_bank().competences["2.1"].tubes)).code]},
            "Choose topics of the chosen competences.",
        ),
        ({"max_level_4.1": "12"}, "A level cap is a level from 1 to 8."),
        ({"max_level_4.1": "x"}, "A level cap is a level from 1 to 8."),
        ({"name": ""}, "This field is required."),
    ]
    for change, message in cases:
        response = await browser.post(page, {**PROFILE, **change}, page=f"{page}/new")
        assert response.status_code == 422, change
        assert message in response.text, change
        assert "For new staff" in response.text  # what was typed is kept
    assert await list_target_profiles(tenant_a.owner_ctx) == []


async def test_a_member_reads_profiles_but_cannot_change_them(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    page = f"/o/{tenant_a.slug}/target-profiles"
    assert (await browser.get(page)).status_code == 200
    assert (await browser.get(f"{page}/new")).status_code == 403
    refused = await browser.post(page, PROFILE, page=page)
    assert refused.status_code == 403
    assert await list_target_profiles(tenant_a.owner_ctx) == []


async def test_an_owner_edits_a_campaign_and_its_code_stays(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Autumn", profile_key="digcomp")
    )
    await browser.login(tenant_a.owner)
    edit = f"/o/{tenant_a.slug}/campaigns/{campaign.id}/edit"
    form = await browser.get(edit)
    assert form.status_code == 200
    assert 'value="Autumn"' in form.text
    assert 'value="catalogue:digcomp" selected' in form.text
    saved = await browser.post(
        edit, {**FORM, "name": "Autumn 2026", "closes_at": "2099-12-31"}, page=edit
    )
    assert saved.status_code == 303
    updated = await get_campaign(tenant_a.owner_ctx, campaign.id)
    assert (updated.name, updated.code) == ("Autumn 2026", campaign.code)
    # Open all day on the 31st in Paris: closed from midnight there, 23:00 UTC in winter.
    assert updated.closes_at == datetime(2099, 12, 31, 23, tzinfo=UTC)
    assert updated.consumes_seat
    again = await browser.get(edit)
    assert 'value="2099-12-31"' in again.text  # the last open day, as typed
    assert re.search(r'name="consumes_seat" value="yes"[^>]*checked', again.text)
    seat_free = {**FORM, "name": "Autumn 2026", "consumes_seat": ""}
    assert (await browser.post(edit, seat_free, page=edit)).status_code == 303
    assert not (await get_campaign(tenant_a.owner_ctx, campaign.id)).consumes_seat
    bad = await browser.post(edit, {**FORM, "name": ""}, page=edit)
    assert bad.status_code == 422
    assert "This field is required." in bad.text
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).name == "Autumn 2026"
    assert (await audit_actions(tenant_a.id))[-1] == "campaign.updated"


async def test_once_someone_started_the_profile_is_locked(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Locked", profile_key="digcomp")
    )
    person = await make_user("Pat Participant")
    ctx = participant_context(
        tenant_a.owner_ctx.tenant, Actor(kind="user", user_id=person.id, label=person.email)
    )
    await start_or_resume(ctx, campaign.id)
    await browser.login(tenant_a.owner)
    edit = f"/o/{tenant_a.slug}/campaigns/{campaign.id}/edit"
    form = await browser.get(edit)
    assert "can no longer change" in form.text
    assert 'name="target_profile" value="catalogue:digcomp"' in form.text  # hidden, kept
    refused = await browser.post(
        edit, {**FORM, "name": "Locked", "type": "profiles_collection"}, page=edit
    )
    assert refused.status_code == 409
    assert "cannot change once someone has started" in refused.text
