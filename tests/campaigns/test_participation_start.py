"""Starting a participation: a new one, resuming, retakes, imported learners
(campaigns.participation.start).

Two tenants in every test that touches data; the bank is the suite's small test bank
(tests/campaigns/conftest.py).
"""

from __future__ import annotations

import asyncio

import pytest

from campaigns import service
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import Conflict, Forbidden, Gone, Invalid
from engine import Bank
from tenants.context import Actor
from tests.campaigns.conftest import (
    Simulee,
    make_campaign,
    make_participant,
    take_test,
    wrong_answer,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant

# --- starting ------------------------------------------------------------------------------


async def test_starting_creates_the_learner_and_a_participation_with_its_first_challenge(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="en")
    assert (participation.attempt, participation.status, participation.resumed) == (
        1,
        "started",
        False,
    )
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    assert (view.position, view.locale, view.max_questions) == (1, "en", 30)
    assert view.statement.startswith("Question ch-")
    async with as_tenant(tenant_a.id):
        learners = await database.fetch(
            "SELECT name, email, user_id FROM learner WHERE tenant_id = $1", tenant_a.id
        )
    assert learners == [
        {"name": "Paula Participant", "email": paula.email, "user_id": paula.user_id}
    ]


async def test_the_test_language_is_asked_then_the_account_one_then_the_campaign_first(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, locales=("fr", "en"))
    for asked, expected in (("en", "en"), ("de", "en"), (None, "en"), ("fr", "fr")):
        person = await make_participant(tenant_a)  # accounts of the suite are in English
        participation = await start_or_resume(person.ctx, campaign.id, locale=asked)
        view = await current_challenge(person.ctx, participation.id)
        assert view is not None
        assert view.locale == expected, asked
    french_only = await make_campaign(tenant_a, locales=("fr",))
    person = await make_participant(tenant_a)
    participation = await start_or_resume(person.ctx, french_only.id, locale="en")
    view = await current_challenge(person.ctx, participation.id)
    assert view is not None
    assert view.locale == "fr"


async def test_simultaneous_starts_make_one_participation(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    started = await asyncio.gather(*(start_or_resume(paula.ctx, campaign.id) for _ in range(3)))
    assert len({p.id for p in started}) == 1
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM participation WHERE tenant_id = $1", tenant_a.id
        )
    assert rows == [{"n": 1}]


async def test_resuming_shows_exactly_the_same_challenge(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="fr")
    first = await current_challenge(paula.ctx, participation.id)
    assert first is not None
    outcome = await answer(
        paula.ctx,
        participation.id,
        first.challenge_id,
        wrong_answer(test_bank.challenge_by_id[first.challenge_id], "fr"),
    )
    again = await start_or_resume(paula.ctx, campaign.id, locale="en")
    assert again.id == participation.id
    assert again.resumed
    shown = await current_challenge(paula.ctx, participation.id)
    assert shown == outcome.next_challenge
    assert shown is not None
    assert shown.locale == "fr"
    assert await current_challenge(paula.ctx, participation.id) == shown


async def test_the_external_id_is_asked_checked_and_kept(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(
        tenant_a, external_id_label="Employee number", external_id_format="digits"
    )
    paula = await make_participant(tenant_a)
    with pytest.raises(Invalid, match="required"):
        await start_or_resume(paula.ctx, campaign.id)
    with pytest.raises(Invalid, match="digits"):
        await start_or_resume(paula.ctx, campaign.id, external_id="AB-12")
    participation = await start_or_resume(paula.ctx, campaign.id, external_id=" 00427 ")
    assert participation.external_id == "00427"
    emails = await make_campaign(
        tenant_a, external_id_label="Work email", external_id_format="email"
    )
    with pytest.raises(Invalid, match="valid email"):
        await start_or_resume(paula.ctx, emails.id, external_id="paula at work")


async def test_an_sso_campaign_needs_a_sign_in_through_the_organization(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, sso_required=True)
    paula = await make_participant(tenant_a)
    with pytest.raises(Forbidden):
        await start_or_resume(paula.ctx, campaign.id)
    assert (await start_or_resume(paula.ctx, campaign.id, via_sso=True)).status == "started"


async def test_no_new_participation_once_closed_but_started_ones_resume(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a, "Paula Early")
    late = await make_participant(tenant_a, "Lena Late")
    started = await start_or_resume(paula.ctx, campaign.id)
    await service.close_campaign(tenant_a.owner_ctx, campaign.id)
    with pytest.raises(Gone):
        await start_or_resume(late.ctx, campaign.id)
    assert (await start_or_resume(paula.ctx, campaign.id)).id == started.id
    assert await current_challenge(paula.ctx, started.id) is not None
    await service.archive_campaign(tenant_a.owner_ctx, campaign.id)
    with pytest.raises(Gone):
        await current_challenge(paula.ctx, started.id)


# --- retakes -------------------------------------------------------------------------------


async def test_a_finished_participation_is_returned_unless_a_retake_is_asked(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    first = await start_or_resume(paula.ctx, campaign.id)
    await take_test(paula.ctx, first.id, Simulee(test_bank, 0.0))
    again = await start_or_resume(paula.ctx, campaign.id)
    assert (again.id, again.status, again.resumed) == (first.id, "completed", False)
    with pytest.raises(Conflict, match="does not allow another attempt"):
        await start_or_resume(paula.ctx, campaign.id, retake=True)


async def test_a_retake_waits_for_the_delay_and_avoids_seen_challenges(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(
        tenant_a, retake_allowed=True, retake_delay_days=7, external_id_label="Badge"
    )
    paula = await make_participant(tenant_a)
    first = await start_or_resume(paula.ctx, campaign.id, external_id="B-1")
    outcomes = await take_test(paula.ctx, first.id, Simulee(test_bank, 0.0))
    with pytest.raises(Conflict) as caught:
        await start_or_resume(paula.ctx, campaign.id, retake=True)
    assert caught.value.message == "You can try again from {date}."
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE participation SET completed_at = now() - interval '8 days' WHERE id = $1",
            first.id,
        )
        seen = await database.fetch(
            "SELECT challenge_id FROM answer WHERE participation_id = $1", first.id
        )
    second = await start_or_resume(paula.ctx, campaign.id, retake=True)
    assert (second.attempt, second.status, second.external_id) == (2, "started", "B-1")
    assert second.id != first.id
    retaken = await take_test(paula.ctx, second.id, Simulee(test_bank, 0.0, seed=3))
    async with as_tenant(tenant_a.id):
        served = await database.fetch(
            "SELECT challenge_id FROM answer WHERE participation_id = $1", second.id
        )
    assert len(retaken) > 0
    assert len(outcomes) > 0
    assert {r["challenge_id"] for r in served}.isdisjoint({r["challenge_id"] for r in seen})
    assert (await start_or_resume(paula.ctx, campaign.id)).id == second.id


# --- imported learners -------------------------------------------------------------------


async def test_a_person_the_organization_imported_takes_the_test_as_that_learner(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    from uuid import uuid4

    from campaigns.learner_import import import_learners
    from tenants.accounts import create_user

    local = f"camille-{uuid4().hex[:6]}"
    csv = f"name,email,external_id,groups\nCamille M,{local.upper()}@Example.org,E-7,Lyon\n"
    await import_learners(tenant_a.owner_ctx, csv.encode())
    await import_learners(tenant_b.owner_ctx, csv.encode())
    unverified = await create_user(f"{local}-x@example.org", "Other", "pw-123456789", "en")
    person = await create_user(
        f"{local}@example.org", "Camille Martin", "pw-123456789", "en", verified=True
    )
    campaign = await make_campaign(tenant_a)
    for user in (unverified, person):
        ctx = participant_context(
            tenant_a.owner_ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email)
        )
        await start_or_resume(ctx, campaign.id)
    for tenant, expected in ((tenant_a, person.id), (tenant_b, None)):
        async with as_tenant(tenant.id):
            rows = await database.fetch(
                "SELECT user_id, external_id, groups FROM learner WHERE tenant_id = $1 "
                "AND lower(email) = lower($2)",
                tenant.id,
                person.email,
            )
        # one learner, the imported one, now the person's (its external id and groups kept)
        assert [(r["user_id"], r["external_id"], r["groups"]) for r in rows] == [
            (expected, "E-7", ["Lyon"])
        ]
