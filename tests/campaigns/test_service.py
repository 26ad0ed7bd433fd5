"""Organizers: creating, editing, duplicating, closing and archiving campaigns. Two tenants
in every test; each function has a cross-tenant case. The fields' rules without a database are
in test_campaign_fields.py, the statistics in test_campaign_stats.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from campaigns import service
from campaigns.campaign_fields import CampaignFields, ProfileSource
from campaigns.campaign_listing import all_campaigns
from campaigns.campaign_stats import campaign_stats
from campaigns.codes import is_well_formed
from campaigns.participation.answering import current_challenge
from campaigns.participation.results import get_participation, share
from campaigns.participation.start import start_or_resume
from campaigns.service import (
    activate_campaign,
    archive_campaign,
    close_campaign,
    create_campaign,
    duplicate_campaign,
    get_campaign,
    update_campaign,
)
from campaigns.target_profiles import TargetProfileFields, create_target_profile
from core import database
from core.errors import Conflict, Forbidden, Invalid, NotFound
from engine import Bank
from tenants.context import Actor, TenantContext
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _events(tenant: TenantFixture, prefix: str) -> list[str]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT action FROM audit_event WHERE tenant_id = $1 AND action LIKE $2 "
            "ORDER BY occurred_at, id",
            tenant.id,
            prefix + "%",
        )
    return [row["action"] for row in rows]


# --- creating ------------------------------------------------------------------------------


async def test_a_member_creates_an_active_campaign_with_a_code_and_a_frozen_profile(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="  Autumn check  ", profile_key="digcomp")
    )
    assert campaign.name == "Autumn check"
    assert campaign.status == "active"
    assert is_well_formed(campaign.code)
    assert campaign.bank_version == test_bank.version
    assert campaign.profile.competences == ("1.1", "1.2", "4.1")
    assert campaign.profile_source == ProfileSource(kind="catalogue", key="digcomp")
    assert campaign.created_by == tenant_a.owner.id
    snapshot = json.loads(campaign.snapshot)
    assert snapshot["profile"]["source"] == {"kind": "catalogue", "key": "digcomp"}
    assert snapshot["engine"]["max_length"] == 30
    assert snapshot["engine"]["one_per_tube"] is False  # nine topics: one per skill instead
    assert await _events(tenant_a, "campaign.") == ["campaign.created"]
    async with database.global_transaction():
        codes = await database.fetch(
            "SELECT organization_id, campaign_id FROM campaign_code WHERE code = $1", campaign.code
        )
    assert codes == [{"organization_id": tenant_a.id, "campaign_id": campaign.id}]


async def test_codes_are_unique(tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    codes = {
        (await make_campaign(tenant)).code for tenant in (tenant_a, tenant_b) for _ in range(5)
    }
    assert len(codes) == 10


async def test_a_taken_code_is_skipped(tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    taken = (await make_campaign(tenant_b)).code
    campaign_id = uuid4()
    async with as_tenant(tenant_a.id):
        code = await service.claim_code(tenant_a.id, campaign_id, [taken, taken, "ABCDEFGH2"])
        with pytest.raises(RuntimeError):
            await service.claim_code(tenant_a.id, campaign_id, [taken, code])
    assert code == "ABCDEFGH2"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": " "}, "name", "This field is required."),
        ({"type": "quiz"}, "type", "Choose one of the offered options."),
        ({"profile_key": None}, "target_profile", "Choose one of the offered target profiles."),
        (
            {"profile_key": "office-essentials"},
            "target_profile",
            "Choose one of the offered target profiles.",
        ),
        ({"locales": ()}, "locales", "Choose at least one language."),
        ({"locales": ("de",)}, "locales", "Choose one of the offered languages."),
        (
            {"external_id_format": "regex"},
            "external_id_format",
            "Choose one of the offered options.",
        ),
        (
            {"retake_delay_days": -1},
            "retake_delay_days",
            "Choose a delay between 0 and {max} days.",
        ),
        (
            {"landing_text": "x" * 5001},
            "landing_text",
            "This field is too long ({max} characters at most).",
        ),
        (
            {"landing_text": "bell\x07"},
            "landing_text",
            "This field contains characters that are not allowed.",
        ),
        (
            {
                "opens_at": datetime(2099, 2, 1, tzinfo=UTC),
                "closes_at": datetime(2099, 1, 1, tzinfo=UTC),
            },
            "closes_at",
            "The closing date must come after the opening date.",
        ),
        (
            {"closes_at": datetime(2020, 1, 1, tzinfo=UTC)},
            "closes_at",
            "The closing date is already past.",
        ),
    ],
)
async def test_campaign_fields_are_checked_with_clear_messages(
    tenant_a: TenantFixture, changes: dict[str, Any], field: str, message: str
) -> None:
    fields = replace(CampaignFields(name="Check", profile_key="digcomp"), **changes)
    with pytest.raises(Invalid) as caught:
        await create_campaign(tenant_a.owner_ctx, fields)
    assert (caught.value.field, caught.value.message) == (field, message)


PARIS = ZoneInfo("Europe/Paris")


async def test_days_typed_in_the_form_are_read_in_the_organizations_zone(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ctx = tenant_a.owner_ctx
    assert ctx.tenant.zone == PARIS
    typed = CampaignFields(
        name="Typed", profile_key="digcomp", opens_on="2090-07-01", closes_on="2090-07-31"
    )
    campaign = await create_campaign(ctx, typed)
    assert campaign.opens_at == datetime(2090, 6, 30, 22, tzinfo=UTC)
    assert campaign.closes_at == datetime(2090, 7, 31, 22, tzinfo=UTC)
    emptied = replace(typed, opens_on="", closes_on="")
    updated = await update_campaign(ctx, campaign.id, emptied)
    assert (updated.opens_at, updated.closes_at) == (None, None)
    assert updated.fields().opens_on is None
    with pytest.raises(Invalid) as caught:
        await update_campaign(ctx, campaign.id, replace(typed, closes_on="2090-07-31x"))
    assert (caught.value.field, caught.value.message) == (
        "closes_at",
        "Enter a date as YYYY-MM-DD.",
    )
    with pytest.raises(Invalid) as caught:
        await create_campaign(ctx, replace(typed, opens_on="2090-08-01"))
    assert caught.value.message == "The closing date must come after the opening date."
    with pytest.raises(ValueError, match="not both"):
        await create_campaign(ctx, replace(typed, opens_at=datetime(2090, 7, 1, tzinfo=UTC)))


async def test_only_members_manage_campaigns(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    participant = await make_participant(tenant_a)
    token = TenantContext(tenant=tenant_a.owner_ctx.tenant, actor=Actor(kind="api_token"))
    for ctx in (participant.ctx, token):
        with pytest.raises(Forbidden):
            await create_campaign(ctx, CampaignFields(name="No", profile_key="digcomp"))
        with pytest.raises(Forbidden):
            await get_campaign(ctx, campaign.id)
        with pytest.raises(Forbidden):
            await campaign_stats(ctx, campaign.id)


async def test_plain_members_read_campaigns_but_only_owners_and_admins_change_them(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    member = tenant_a.member_ctx
    assert (await get_campaign(member, campaign.id)).id == campaign.id
    assert (await campaign_stats(member, campaign.id)).started == 0
    assert [c.id for c in await all_campaigns(member)] == [campaign.id]
    with pytest.raises(Forbidden):
        await create_campaign(member, CampaignFields(name="No", profile_key="digcomp"))
    for change in (close_campaign, archive_campaign, duplicate_campaign):
        with pytest.raises(Forbidden):
            await change(member, campaign.id)
    assert (await get_campaign(member, campaign.id)).status == "active"


async def test_a_custom_profile_is_frozen_at_its_version(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    profile = await create_target_profile(
        tenant_a.owner_ctx,
        TargetProfileFields(
            name="Safety basics",
            competences=["4.1", "1.2"],
            tubes=["4.1-t1", "4.1-t2", "1.2-t3"],
            max_levels={"4.1": 3},
        ),
    )
    campaign = await make_campaign(tenant_a, profile_key=None, target_profile_id=profile.id)
    assert campaign.target_profile_id == profile.id
    assert campaign.profile.competences == ("1.2", "4.1")
    assert campaign.profile.tubes == ("1.2-t3", "4.1-t1", "4.1-t2")
    assert campaign.profile.max_level("4.1") == 3
    assert campaign.profile_source == ProfileSource(
        kind="custom", id=profile.id, version=1, name="Safety basics"
    )
    stored = json.loads(campaign.snapshot)["profile"]["source"]
    assert stored == {
        "kind": "custom",
        "id": str(profile.id),
        "version": 1,
        "name": "Safety basics",
    }
    with pytest.raises(Invalid):  # another tenant's profile is not offered
        await make_campaign(tenant_b, profile_key=None, target_profile_id=profile.id)


# --- editing -------------------------------------------------------------------------------


async def test_editing_before_anyone_started_may_change_the_profile(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    profile = await create_target_profile(
        tenant_a.owner_ctx, TargetProfileFields(name="Only 4.1", competences=["4.1"])
    )
    fields = replace(
        campaign.fields(), name="Renamed", profile_key=None, target_profile_id=profile.id
    )
    updated = await update_campaign(tenant_a.owner_ctx, campaign.id, fields)
    assert (updated.name, updated.profile.competences, updated.code) == (
        "Renamed",
        ("4.1",),
        campaign.code,
    )
    assert json.loads(updated.snapshot)["engine"]["one_per_tube"] is False
    with pytest.raises(NotFound):
        await update_campaign(tenant_b.owner_ctx, campaign.id, fields)


async def test_once_someone_started_the_profile_and_type_are_fixed(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    participant = await make_participant(tenant_a)
    await start_or_resume(participant.ctx, campaign.id)
    profile = await create_target_profile(
        tenant_a.owner_ctx, TargetProfileFields(name="Only 4.1", competences=["4.1"])
    )
    other_profile = replace(campaign.fields(), profile_key=None, target_profile_id=profile.id)
    with pytest.raises(Conflict, match="cannot change once someone has started"):
        await update_campaign(tenant_a.owner_ctx, campaign.id, other_profile)
    with pytest.raises(Conflict):
        await update_campaign(
            tenant_a.owner_ctx, campaign.id, replace(campaign.fields(), type="profiles_collection")
        )
    later = datetime.now(UTC) + timedelta(days=30)
    updated = await update_campaign(
        tenant_a.owner_ctx,
        campaign.id,
        replace(campaign.fields(), closes_at=later, retake_allowed=True, locales=("en",)),
    )
    assert (updated.closes_at, updated.retake_allowed, updated.locales) == (later, True, ("en",))
    assert updated.snapshot == campaign.snapshot
    assert await _events(tenant_a, "campaign.") == ["campaign.created", "campaign.updated"]


async def test_an_unchanged_edit_records_nothing(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await update_campaign(tenant_a.owner_ctx, campaign.id, campaign.fields())
    assert await _events(tenant_a, "campaign.") == ["campaign.created"]


# --- duplicating, closing, archiving ---------------------------------------------------------


async def test_duplicating_makes_a_draft_with_a_new_code(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    source = await make_campaign(
        tenant_a,
        landing_text="Hello",
        retake_allowed=True,
        closes_at=datetime.now(UTC) + timedelta(days=3),
    )
    copy = await duplicate_campaign(tenant_a.owner_ctx, source.id, name="Second round")
    assert copy.id != source.id
    assert copy.code != source.code
    assert (copy.name, copy.status, copy.landing_text, copy.retake_allowed) == (
        "Second round",
        "draft",
        "Hello",
        True,
    )
    assert copy.closes_at is None
    assert copy.duplicated_from == source.id
    assert copy.profile == source.profile
    with pytest.raises(NotFound):
        await duplicate_campaign(tenant_b.owner_ctx, source.id)
    assert (await activate_campaign(tenant_a.owner_ctx, copy.id)).status == "active"


async def test_the_status_moves_from_draft_to_active_closed_archived(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ctx = tenant_a.owner_ctx
    campaign = await make_campaign(tenant_a, draft=True)
    with pytest.raises(Conflict, match="Only an active campaign"):
        await close_campaign(ctx, campaign.id)
    assert (await activate_campaign(ctx, campaign.id)).status == "active"
    closed = await close_campaign(ctx, campaign.id)
    assert closed.status == "closed"
    assert closed.closed_at is not None
    assert (await close_campaign(ctx, campaign.id)).closed_at == closed.closed_at
    assert (await activate_campaign(ctx, campaign.id)).status == "active"
    archived = await archive_campaign(ctx, campaign.id)
    assert archived.status == "archived"
    assert archived.archived_at is not None
    assert (await archive_campaign(ctx, campaign.id)).archived_at == archived.archived_at
    for change in (activate_campaign, close_campaign):
        with pytest.raises(Conflict, match="archived"):
            await change(ctx, campaign.id)
    with pytest.raises(Conflict, match="archived"):
        await update_campaign(ctx, campaign.id, campaign.fields())
    assert await _events(tenant_a, "campaign.") == [
        "campaign.created",
        "campaign.activated",
        "campaign.closed",
        "campaign.activated",
        "campaign.archived",
    ]
    for change in (activate_campaign, close_campaign, archive_campaign):
        with pytest.raises(NotFound):
            await change(tenant_b.owner_ctx, campaign.id)


async def test_a_campaign_past_its_closing_date_does_not_reopen(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE campaign SET closes_at = now() - interval '1 hour' WHERE id = $1", campaign.id
        )
    with pytest.raises(Conflict, match="closing date is past"):
        await activate_campaign(tenant_a.owner_ctx, campaign.id)


async def test_get_and_list_stay_in_the_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    mine = await make_campaign(tenant_a, name="Mine")
    theirs = await make_campaign(tenant_b, name="Theirs")
    assert (await get_campaign(tenant_a.owner_ctx, mine.id)).name == "Mine"
    with pytest.raises(NotFound):
        await get_campaign(tenant_a.owner_ctx, theirs.id)
    with pytest.raises(NotFound):
        await get_campaign(tenant_a.owner_ctx, "not-a-uuid")
    listed = await all_campaigns(tenant_a.owner_ctx)
    assert [row.id for row in listed] == [mine.id]
    assert listed[0].started == 0


# --- profiles collection -------------------------------------------------------------------


async def test_a_profiles_collection_gathers_the_latest_levels_without_a_test(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    assessment_campaign = await make_campaign(tenant_a)
    collection = await make_campaign(tenant_a, name="Collect", type="profiles_collection")
    person = await make_participant(tenant_a)
    taken = await start_or_resume(person.ctx, assessment_campaign.id)
    await take_test(person.ctx, taken.id, Simulee(test_bank, 1.0))
    done = await get_participation(person.ctx, taken.id)
    collected = await start_or_resume(person.ctx, collection.id)
    assert collected.status == "completed"
    assert collected.result is not None
    assert done.result is not None
    assert collected.result.competences == done.result.competences
    assert collected.result.theta is None
    with pytest.raises(Conflict, match="no test"):
        await current_challenge(person.ctx, collected.id)
    assert (await share(person.ctx, collected.id, consent=True)).status == "shared"
