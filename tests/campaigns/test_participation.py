"""Participants: the code, starting and resuming, the adaptive test, results, sharing.

Two tenants in every test that touches data; each participant function has a cross-tenant
case. The bank is the suite's small test bank (tests/campaigns/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from campaigns import service
from campaigns.participation import (
    answer,
    current_challenge,
    get_participation,
    participant_context,
    resolve_code,
    share,
    start_or_resume,
)
from core import database
from core.errors import Conflict, Forbidden, Gone, Invalid, NotFound, Unauthenticated
from engine import Bank
from tenants.context import Actor
from tests.campaigns.conftest import (
    Simulee,
    make_campaign,
    make_participant,
    right_answer,
    take_test,
    wrong_answer,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _set_campaign(tenant: TenantFixture, campaign_id: object, sql: str) -> None:
    """Test set-up that the service cannot do (dates in the past), as the runtime role."""
    async with as_tenant(tenant.id):
        await database.execute(
            f"UPDATE campaign SET {sql} WHERE tenant_id = $1 AND id = $2",  # noqa: S608
            tenant.id,
            campaign_id,
        )


# --- the code ------------------------------------------------------------------------------


async def test_a_code_resolves_to_its_campaign_and_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, landing_text="Welcome!\nTake your time.")
    landing = await resolve_code(campaign.code.lower()[:4] + " " + campaign.code.lower()[4:])
    assert landing.campaign_id == campaign.id
    assert landing.tenant.id == tenant_a.id
    assert landing.tenant.slug == tenant_a.slug
    assert landing.landing_text == "Welcome!\nTake your time."
    assert landing.locales == ("fr", "en")


async def test_unknown_mistyped_and_draft_codes_are_not_found_alike(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    draft = await make_campaign(tenant_b, draft=True)
    typo = campaign.code[:3] + ("A" if campaign.code[3] != "A" else "B") + campaign.code[4:]
    for code in ("", "nothing", typo, "AAAAAAAAA", draft.code):
        with pytest.raises(NotFound) as caught:
            await resolve_code(code)
        assert caught.value.message == "No campaign has this code. Check it and try again."


async def test_closed_archived_ended_and_future_campaigns_refuse_their_code(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    closed = await make_campaign(tenant_a)
    await service.close_campaign(tenant_a.owner_ctx, closed.id)
    archived = await make_campaign(tenant_a)
    await service.archive_campaign(tenant_a.owner_ctx, archived.id)
    ended = await make_campaign(tenant_a)
    await _set_campaign(tenant_a, ended.id, "closes_at = now() - interval '1 day'")
    future = await make_campaign(
        tenant_b, opens_at=datetime(2099, 1, 2, 9, tzinfo=UTC), closes_at=None
    )
    with pytest.raises(Gone, match="closed"):
        await resolve_code(closed.code)
    with pytest.raises(Gone, match="closed"):
        await resolve_code(archived.code)
    with pytest.raises(Gone, match="ended"):
        await resolve_code(ended.code)
    with pytest.raises(Conflict) as caught:
        await resolve_code(future.code)
    assert caught.value.params == {"date": "2099-01-02"}


async def test_a_suspended_organization_closes_its_campaigns(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    async with database.global_transaction():
        await database.execute(
            "UPDATE organization SET status = 'suspended' WHERE id = $1", tenant_a.id
        )
    with pytest.raises(Gone):
        await resolve_code(campaign.code)


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


async def test_a_participant_signed_in_is_required(tenant_a: TenantFixture) -> None:
    with pytest.raises(Unauthenticated):
        participant_context(tenant_a.owner_ctx.tenant, Actor(kind="api_token", label="t"))


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


# --- the test ------------------------------------------------------------------------------


async def test_a_full_assessment_from_start_to_result(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="en")
    outcomes = await take_test(paula.ctx, participation.id, Simulee(test_bank, theta=1.0))
    assert 10 <= len(outcomes) <= 30
    assert [o.position for o in outcomes] == list(range(1, len(outcomes) + 1))
    assert [o.completed for o in outcomes] == [False] * (len(outcomes) - 1) + [True]
    assert outcomes[-1].next_challenge is None
    assert await current_challenge(paula.ctx, participation.id) is None
    done = await get_participation(paula.ctx, participation.id)
    assert done.status == "completed"
    assert done.completed_at is not None
    assert done.result is not None
    assert set(done.result.competences) == {"1.1", "1.2", "4.1"}
    assert sum(c["answers"] for c in done.result.competences.values()) == len(outcomes)
    assert 0 <= done.result.level <= 8
    assert done.result.score == sum(c["points"] for c in done.result.competences.values())
    assert done.result.se is not None
    assert done.result.se < 0.6
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            """SELECT position, challenge_id, correct FROM answer
               WHERE tenant_id = $1 AND participation_id = $2 ORDER BY position""",
            tenant_a.id,
            participation.id,
        )
    assert [r["correct"] for r in rows] == [o.correct for o in outcomes]
    assert len({r["challenge_id"] for r in rows}) == len(rows)  # never the same challenge twice


async def test_abilities_order_the_results(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    scores = []
    for theta in (-2.0, 0.0, 2.0):
        person = await make_participant(tenant_a, f"Theta {theta}")
        participation = await start_or_resume(person.ctx, campaign.id)
        await take_test(person.ctx, participation.id, Simulee(test_bank, theta, seed=11))
        result = (await get_participation(person.ctx, participation.id)).result
        assert result is not None
        assert result.theta is not None
        scores.append(result.theta)
    assert scores == sorted(scores)


async def test_a_skipped_challenge_counts_as_wrong(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    outcome = await answer(paula.ctx, participation.id, view.challenge_id, skipped=True)
    assert (outcome.correct, outcome.position) == (False, 1)
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT value, skipped FROM answer WHERE tenant_id = $1", tenant_a.id
        )
    assert rows == [{"value": None, "skipped": True}]


async def test_a_malformed_answer_is_refused_and_not_recorded(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    bad = "some text" if view.type != "short_text" else 3
    with pytest.raises(Invalid):
        await answer(paula.ctx, participation.id, view.challenge_id, bad)
    assert await current_challenge(paula.ctx, participation.id) == view


async def test_a_second_submission_is_refused_and_recorded_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    value = right_answer(test_bank.challenge_by_id[view.challenge_id])
    outcome = await answer(paula.ctx, participation.id, view.challenge_id, value)
    with pytest.raises(Conflict, match="already been answered"):
        await answer(paula.ctx, participation.id, view.challenge_id, value)
    assert outcome.next_challenge is not None
    unseen = next(
        ch.id
        for ch in test_bank.challenges
        if ch.id not in (view.challenge_id, outcome.next_challenge.challenge_id)
    )
    with pytest.raises(Conflict, match="not the current question"):
        await answer(paula.ctx, participation.id, unseen, 0)
    async with as_tenant(tenant_a.id):
        count = await database.fetch(
            "SELECT count(*) AS n FROM answer WHERE tenant_id = $1", tenant_a.id
        )
    assert count == [{"n": 1}]


async def test_simultaneous_submissions_record_one_answer(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    value = right_answer(test_bank.challenge_by_id[view.challenge_id])
    results = await asyncio.gather(
        *(answer(paula.ctx, participation.id, view.challenge_id, value) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 2
    async with as_tenant(tenant_a.id):
        count = await database.fetch(
            "SELECT count(*) AS n FROM answer WHERE tenant_id = $1", tenant_a.id
        )
    assert count == [{"n": 1}]


async def test_the_database_refuses_a_second_answer_at_the_same_position(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    await answer(paula.ctx, participation.id, view.challenge_id, skipped=True)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with as_tenant(tenant_a.id):
            await database.execute(
                """INSERT INTO answer (tenant_id, id, participation_id, position, challenge_id,
                       value, correct)
                   VALUES ($1, gen_random_uuid(), $2, 1, 'another', '0', true)""",
                tenant_a.id,
                participation.id,
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_tenant(tenant_a.id):
            await database.execute(
                "UPDATE answer SET correct = true WHERE tenant_id = $1", tenant_a.id
            )


async def test_answering_a_finished_test_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    outcomes = await take_test(paula.ctx, participation.id, Simulee(test_bank, 0.0))
    last = outcomes[-1]
    with pytest.raises(Conflict, match="finished"):
        await answer(paula.ctx, participation.id, "ch-1.1-t1-1", 0)
    assert last.completed


async def test_the_answer_costs_a_fixed_number_of_statements(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank, statements: list[str]
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    simulee = Simulee(test_bank, 0.5)
    per_answer: list[list[str]] = []
    while view is not None:
        statements.clear()
        outcome = await answer(
            paula.ctx, participation.id, view.challenge_id, simulee.respond(view)
        )
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        per_answer.append([s.split()[0].upper() for s in statements])
        view = outcome.next_challenge
    assert len(per_answer) >= 10
    expected = ["BEGIN;", "SET", "SET", "SELECT", "WITH", "COMMIT;"]
    assert all(kinds == expected for kinds in per_answer), per_answer
    statements.clear()
    await current_challenge(paula.ctx, participation.id)
    await asyncio.sleep(0)
    assert [s.split()[0].upper() for s in statements] == [
        "BEGIN;",
        "SET",
        "SET",
        "SELECT",
        "COMMIT;",
    ]


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


# --- sharing -------------------------------------------------------------------------------


async def test_sharing_needs_consent_and_a_finished_test(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    with pytest.raises(Conflict, match="Finish the test"):
        await share(paula.ctx, participation.id, consent=True)
    await take_test(paula.ctx, participation.id, Simulee(test_bank, 0.0))
    with pytest.raises(Invalid) as caught:
        await share(paula.ctx, participation.id, consent=False)
    assert caught.value.field == "consent"
    shared = await share(paula.ctx, participation.id, consent=True)
    assert shared.status == "shared"
    assert shared.shared_at is not None
    again = await share(paula.ctx, participation.id, consent=True)
    assert again.shared_at == shared.shared_at
    async with as_tenant(tenant_a.id):
        events = await database.fetch(
            "SELECT actor_user_id, target_id FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'participation.shared'",
            tenant_a.id,
        )
    assert events == [{"actor_user_id": paula.user_id, "target_id": str(participation.id)}]


# --- isolation -----------------------------------------------------------------------------


async def test_participant_functions_answer_not_found_across_tenants(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    # The same person, acting in tenant B, with tenant A's ids.
    in_b = participant_context(tenant_b.owner_ctx.tenant, paula.ctx.actor)
    with pytest.raises(NotFound):
        await start_or_resume(in_b, campaign.id)
    with pytest.raises(NotFound):
        await current_challenge(in_b, participation.id)
    with pytest.raises(NotFound):
        await answer(in_b, participation.id, view.challenge_id, skipped=True)
    with pytest.raises(NotFound):
        await share(in_b, participation.id, consent=True)
    with pytest.raises(NotFound):
        await get_participation(in_b, participation.id)
    assert await current_challenge(paula.ctx, participation.id) == view


async def test_another_participant_of_the_same_tenant_cannot_reach_a_participation(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    other = await make_participant(tenant_a, "Oscar Other")
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    for call in (
        current_challenge(other.ctx, participation.id),
        answer(other.ctx, participation.id, view.challenge_id, skipped=True),
        share(other.ctx, participation.id, consent=True),
        get_participation(other.ctx, participation.id),
        current_challenge(other.ctx, "not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            await call


async def test_the_participant_rows_of_a_tenant_are_invisible_to_another(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    await take_test(paula.ctx, participation.id, Simulee(test_bank, 0.0))
    for table in ("campaign", "learner", "participation", "assessment", "answer", "result"):
        async with as_tenant(tenant_b.id):
            rows = await database.fetch(f"SELECT tenant_id FROM {table}")  # noqa: S608
        assert tenant_a.id not in {row["tenant_id"] for row in rows}, table
    async with as_tenant(tenant_b.id):
        codes = await database.fetch(
            "SELECT organization_id FROM campaign_code WHERE code = $1", campaign.code
        )
    assert codes == [{"organization_id": tenant_a.id}]  # the routing table is global, by design


async def test_a_code_cannot_be_claimed_for_another_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_tenant(tenant_b.id):
            await service.claim_code(tenant_a.id, tenant_a.id, ["ABCDEFGH2"])


async def test_a_retake_in_another_campaign_does_not_count(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    one = await make_campaign(tenant_a)
    two = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    first = await start_or_resume(paula.ctx, one.id)
    await take_test(paula.ctx, first.id, Simulee(test_bank, 0.0))
    other = await start_or_resume(paula.ctx, two.id)
    assert (other.attempt, other.status) == (1, "started")
    assert datetime.now(UTC) - other.created_at < timedelta(minutes=5)


async def test_a_persons_rows_elsewhere_stay_hidden_inside_a_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """A person's results are read across organizations only with no tenant set: inside
    tenant A's transaction, their participation in tenant B is invisible."""
    person = await make_participant(tenant_b)
    campaign_b = await make_campaign(tenant_b)
    await start_or_resume(person.ctx, campaign_b.id)
    async with database.global_transaction(user_id=person.user_id):
        everywhere = await database.fetch("SELECT tenant_id FROM participation")
    async with as_tenant(tenant_a.id, person.user_id):
        in_a = await database.fetch("SELECT tenant_id FROM participation")
        learners_in_a = await database.fetch("SELECT tenant_id FROM learner")
    assert [row["tenant_id"] for row in everywhere] == [tenant_b.id]
    assert tenant_b.id not in {row["tenant_id"] for row in in_a}
    assert tenant_b.id not in {row["tenant_id"] for row in learners_in_a}


# --- imported learners -------------------------------------------------------------------


async def test_a_person_the_organization_imported_takes_the_test_as_that_learner(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    from uuid import uuid4

    from campaigns.learners import import_learners
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


# --- timed challenges --------------------------------------------------------------------


async def test_a_timed_challenge_answered_too_late_counts_as_wrong(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    from campaigns.participation import TIMER_GRACE_SECONDS
    from campaigns.target_profiles import TargetProfileFields, create_target_profile

    # every challenge of 1.2 in the test bank gives 60 seconds
    profile = await create_target_profile(tenant_a.owner_ctx, TargetProfileFields("T", ["1.2"]))
    campaign = await make_campaign(tenant_a, profile_key=None, target_profile_id=profile.id)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    assert view.timer_seconds == 60
    assert view.seconds_left is not None
    assert 55 <= view.seconds_left <= 60
    in_time = await answer(
        paula.ctx,
        participation.id,
        view.challenge_id,
        right_answer(test_bank.challenge_by_id[view.challenge_id]),
    )
    assert (in_time.correct, in_time.late) == (True, False)
    view = in_time.next_challenge
    assert view is not None
    # chosen but not shown yet: its clock has not started
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE assessment SET updated_at = now() - interval '1 hour' "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            participation.id,
        )
    shown = await current_challenge(paula.ctx, participation.id)
    assert shown is not None
    assert shown.seconds_left == 60
    # the page showed it long ago (a participant who left and came back): the clock ran on
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE assessment SET current_shown_at = now() - make_interval(secs => $3) "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            participation.id,
            60 + TIMER_GRACE_SECONDS + 1,
        )
    resumed = await current_challenge(paula.ctx, participation.id)
    assert resumed is not None
    assert resumed.seconds_left == 0
    value = right_answer(test_bank.challenge_by_id[view.challenge_id])
    late = await answer(paula.ctx, participation.id, view.challenge_id, value)
    assert (late.correct, late.late) == (False, True)
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT value, correct FROM answer WHERE tenant_id = $1 AND participation_id = $2 "
            "ORDER BY position",
            tenant_a.id,
            participation.id,
        )
    assert [r["correct"] for r in rows] == [True, False]
    assert rows[1]["value"] is not None  # the answer given is kept
