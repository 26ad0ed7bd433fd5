"""The adaptive test one challenge at a time, and timed challenges
(campaigns.participation.answering).

Two tenants in every test that touches data; the bank is the suite's small test bank
(tests/campaigns/conftest.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest

from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.results import get_participation
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import Conflict, Invalid
from engine import Bank
from tests.campaigns.conftest import (
    Simulee,
    make_campaign,
    make_participant,
    right_answer,
    start_a_test,
    take_test,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant

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
    _campaign, paula, participation, view = await start_a_test(tenant_a)
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
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    bad = "some text" if view.type != "short_text" else 3
    with pytest.raises(Invalid):
        await answer(paula.ctx, participation.id, view.challenge_id, bad)
    still = await current_challenge(paula.ctx, participation.id)
    assert still is not None
    assert replace(still, seconds_left=view.seconds_left) == view  # a timer runs on meanwhile


async def test_a_second_submission_is_refused_and_recorded_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
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
    _campaign, paula, participation, view = await start_a_test(tenant_a)
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
    _campaign, paula, participation, view = await start_a_test(tenant_a)
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
    expected = ["BEGIN;", "SELECT", "WITH", "COMMIT"]  # BEGIN carries the SETs
    assert all(kinds == expected for kinds in per_answer), per_answer
    statements.clear()
    await current_challenge(paula.ctx, participation.id)
    await asyncio.sleep(0)
    assert [s.split()[0].upper() for s in statements] == [
        "BEGIN;",
        "SELECT",
        "COMMIT",
    ]


# --- timed challenges --------------------------------------------------------------------


async def test_a_timed_challenge_answered_too_late_counts_as_wrong(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    from campaigns.participation.rules import TIMER_GRACE_SECONDS
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
