"""A tenant's own target profiles: checked against the bank, versioned, archived, isolated."""

from __future__ import annotations

from dataclasses import replace

import pytest

from campaigns.participation.start import start_or_resume
from campaigns.service import get_campaign, update_campaign
from campaigns.target_profiles import (
    TargetProfileFields,
    archive_target_profile,
    create_target_profile,
    get_target_profile,
    list_target_profiles,
    update_target_profile,
)
from core.errors import Conflict, Forbidden, Invalid, NotFound
from tests.campaigns.conftest import make_campaign, make_participant
from tests.conftest import TenantFixture


async def test_a_profile_is_created_in_framework_order(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    profile = await create_target_profile(
        tenant_a.owner_ctx,
        TargetProfileFields(
            name="Mine", competences=["4.1", "1.1", "4.1"], max_levels={"1.1": 8, "4.1": 4}
        ),
    )
    assert profile.spec.competences == ("1.1", "4.1")
    assert profile.spec.max_levels == (("4.1", 4),)  # a cap of 8 is no cap
    assert profile.version == 1
    assert [p.id for p in await list_target_profiles(tenant_a.owner_ctx)] == [profile.id]
    assert await list_target_profiles(tenant_b.owner_ctx) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (TargetProfileFields(name="x", competences=[]), "Choose at least one competence."),
        (TargetProfileFields(name="x", competences=["9.9"]), "Unknown competence: {code}."),
        (
            TargetProfileFields(name="x", competences=["1.1"], tubes=["4.1-t1"]),
            "Choose topics of the chosen competences.",
        ),
        (
            TargetProfileFields(name="x", competences=["1.1"], max_levels={"4.1": 2}),
            "Set level caps on chosen competences only.",
        ),
        (
            TargetProfileFields(name="x", competences=["1.1"], max_levels={"1.1": 0}),
            "A level cap is a level from 1 to 8.",
        ),
        (TargetProfileFields(name="", competences=["1.1"]), "This field is required."),
    ],
)
async def test_a_profile_is_checked_against_the_bank(
    tenant_a: TenantFixture, fields: TargetProfileFields, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await create_target_profile(tenant_a.owner_ctx, fields)
    assert caught.value.message == message


async def test_an_edit_bumps_the_version_and_campaigns_keep_theirs(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ctx = tenant_a.owner_ctx
    profile = await create_target_profile(ctx, TargetProfileFields(name="P", competences=["1.1"]))
    campaign = await make_campaign(tenant_a, profile_key=None, target_profile_id=profile.id)
    person = await make_participant(tenant_a)
    await start_or_resume(person.ctx, campaign.id)
    edited = await update_target_profile(
        ctx, profile.id, TargetProfileFields(name="P", competences=["1.1", "1.2"])
    )
    assert edited.version == 2
    assert (await get_campaign(ctx, campaign.id)).profile.competences == ("1.1",)
    same = await update_target_profile(
        ctx, profile.id, TargetProfileFields(name="P", competences=["1.2", "1.1"])
    )
    assert same.version == 2  # nothing changed, nothing bumped
    with pytest.raises(NotFound):
        await update_target_profile(
            tenant_b.owner_ctx, profile.id, TargetProfileFields(name="P", competences=["1.1"])
        )


async def test_an_archived_profile_is_kept_but_no_longer_offered(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ctx = tenant_a.owner_ctx
    profile = await create_target_profile(ctx, TargetProfileFields(name="Old", competences=["1.1"]))
    campaign = await make_campaign(tenant_a, profile_key=None, target_profile_id=profile.id)
    with pytest.raises(NotFound):
        await archive_target_profile(tenant_b.owner_ctx, profile.id)
    await archive_target_profile(ctx, profile.id)
    renamed = await update_campaign(ctx, campaign.id, replace(campaign.fields(), name="Renamed"))
    assert renamed.snapshot == campaign.snapshot  # the frozen profile stays
    await archive_target_profile(ctx, profile.id)
    assert await list_target_profiles(ctx) == []
    assert [p.id for p in await list_target_profiles(ctx, include_archived=True)] == [profile.id]
    assert (await get_target_profile(ctx, profile.id)).archived_at is not None
    with pytest.raises(Conflict):
        await update_target_profile(
            ctx, profile.id, TargetProfileFields(name="New", competences=["1.1"])
        )
    with pytest.raises(Invalid):
        await make_campaign(tenant_a, profile_key=None, target_profile_id=profile.id)


async def test_profiles_are_for_members_and_stay_in_their_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    profile = await create_target_profile(
        tenant_a.owner_ctx, TargetProfileFields(name="A", competences=["1.1"])
    )
    with pytest.raises(NotFound):
        await get_target_profile(tenant_b.owner_ctx, profile.id)
    with pytest.raises(NotFound):
        await get_target_profile(tenant_a.owner_ctx, "nope")
    participant = await make_participant(tenant_a)
    with pytest.raises(Forbidden):
        await list_target_profiles(participant.ctx)
