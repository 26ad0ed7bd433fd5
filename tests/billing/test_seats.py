"""The seat ledger through the real participation start: what consumes a seat (the first start
of the period in a seat-consuming campaign, nothing after it), each overage policy once the
seats are gone, the last seat taken once by two really concurrent starts, the alerts at 80 %
and 100 % once each, a suspended subscription that turns new participants away but lets a
started one finish, seat packs, and the statements the seat check costs."""

from __future__ import annotations

import asyncio
from contextvars import Context
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from billing import seats
from billing.catalogue import PlanFields, create_plan, set_price
from billing.seats import SeatPackFields, SeatsExhausted
from billing.subscriptions import subscribe, transition
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.start import start_or_resume
from core import database
from core.database import fetch
from core.errors import Forbidden, Invalid, NotFound
from core.mail import recent_mail
from engine import Bank
from tests.billing.plans import STAFF
from tests.campaigns.conftest import (  # noqa: F401 - fixtures
    Simulee,
    make_campaign,
    make_participant,
    take_test,
    test_bank,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant

NOW = datetime.now(UTC)


async def subscribe_to(
    tenant: TenantFixture, *, kind: str = "seat_pack", policy: str = "block", seats: int = 1
) -> None:
    """Subscribe the tenant (active, since yesterday) to a new plan of `kind` under `policy`:
    a per-seat plan with `seats` seats, or a seat-pack plan with one pack of `seats`."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"{kind.replace('_', '-')}-{uuid4().hex[:10]}",
            kind=kind,
            names={"en": "Plan", "fr": "Formule"},
            interval="year",
            overage_policy=policy,
            pack_seats=10 if kind == "seat_pack" else None,
            pack_validity_months=12 if kind == "seat_pack" else None,
        ),
    )
    await set_price(STAFF, plan.code, "EUR", 1000, overage_unit_amount=1500)
    await subscribe(
        tenant.owner_ctx,
        plan.code,
        at=NOW - timedelta(days=1),
        quantity=seats,
        trial=False,
    )
    if kind == "seat_pack":
        await seats_pack(tenant, seats)


async def seats_pack(tenant: TenantFixture, seats_count: int) -> seats.SeatPack:
    return await seats.add_seat_pack(
        tenant.owner_ctx,
        STAFF,
        SeatPackFields(seats=seats_count, starts_on=NOW.date() - timedelta(days=1)),
    )


async def usage_rows(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await fetch(
            "SELECT * FROM seat_usage WHERE tenant_id = $1 ORDER BY consumed_at", tenant.id
        )


async def used(tenant: TenantFixture) -> int:
    summary = await seats.usage_summary(tenant.owner_ctx)
    assert summary is not None
    return summary.used


async def participations(tenant: TenantFixture) -> int:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT count(*) AS n FROM participation WHERE tenant_id = $1", tenant.id
        )
    return int(rows[0]["n"])


async def mail_to(address: str) -> list[str]:
    return [m.subject for m in await recent_mail(500) if m.to_address == address]


@pytest.fixture(autouse=True)
def _bank(test_bank: Bank) -> None:  # noqa: F811 - the fixture imported above
    """Every test here runs on the campaigns' test bank."""


# --- what consumes a seat ------------------------------------------------------------------


async def test_a_tenant_without_subscription_counts_nothing_and_turns_no_one_away(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    for name in ("Ann", "Ben", "Cid"):
        person = await make_participant(tenant_a, f"{name} Participant")
        await start_or_resume(person.ctx, campaign.id)
    assert await usage_rows(tenant_a) == []
    assert await seats.usage_summary(tenant_a.owner_ctx) is None
    assert await seats.banner(tenant_a.owner_ctx) is None


async def test_the_first_start_of_the_period_consumes_a_seat_and_nothing_after_it(
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    test_bank: Bank,  # noqa: F811
) -> None:
    await subscribe_to(tenant_a, kind="per_seat", seats=10)
    first = await make_campaign(tenant_a, retake_allowed=True)
    second = await make_campaign(tenant_a, name="Second check")
    paula = await make_participant(tenant_a)
    started = await start_or_resume(paula.ctx, first.id)
    assert await used(tenant_a) == 1
    await start_or_resume(paula.ctx, first.id)  # resumed
    await start_or_resume(paula.ctx, second.id)  # a second campaign, same period
    await take_test(paula.ctx, started.id, Simulee(test_bank, 0.0))
    retake = await start_or_resume(paula.ctx, first.id, retake=True)
    assert retake.id != started.id
    rows = await usage_rows(tenant_a)
    assert [(r["campaign_id"], r["overage"]) for r in rows] == [(first.id, False)]
    assert await used(tenant_a) == 1
    # another tenant's ledger is its own
    assert await seats.usage_summary(tenant_b.owner_ctx) is None


async def test_a_seat_free_campaign_consumes_nothing(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=1)
    free = await make_campaign(tenant_a, consumes_seat=False)
    for name in ("Ann", "Ben"):
        person = await make_participant(tenant_a, f"{name} Participant")
        await start_or_resume(person.ctx, free.id)
    assert await usage_rows(tenant_a) == []


async def test_a_new_period_counts_the_learner_again(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, kind="per_seat", seats=10)
    first = await make_campaign(tenant_a)
    second = await make_campaign(tenant_a, name="Next year")
    paula = await make_participant(tenant_a)
    await start_or_resume(paula.ctx, first.id)
    next_start = NOW - timedelta(minutes=1)
    async with as_tenant(tenant_a.id):
        await fetch(
            """UPDATE subscription SET current_period_start = $2,
                   current_period_end = $2::timestamptz + interval '1 year' WHERE tenant_id = $1""",
            tenant_a.id,
            next_start,
        )
    await start_or_resume(paula.ctx, second.id)
    rows = await usage_rows(tenant_a)
    assert [(r["period_start"] > NOW - timedelta(days=1), r["campaign_id"]) for r in rows] == [
        (False, first.id),
        (True, second.id),
    ]
    assert await used(tenant_a) == 1


# --- overage policies, once the pack is exhausted -------------------------------------------


async def test_block_turns_the_next_participant_away_writes_nothing_and_mails_the_admins_daily(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=1)
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    await start_or_resume(paula.ctx, campaign.id)
    before = await participations(tenant_a)
    for name in ("Ben", "Cid"):
        late = await make_participant(tenant_a, f"{name} Latecomer")
        with pytest.raises(SeatsExhausted) as refused:
            await start_or_resume(late.ctx, campaign.id)
        assert refused.value.status_code == 403
        assert "no seat left" in refused.value.message
    assert await participations(tenant_a) == before
    async with as_tenant(tenant_a.id):
        learners = await fetch(
            "SELECT name FROM learner WHERE tenant_id = $1 ORDER BY name", tenant_a.id
        )
    assert [row["name"] for row in learners] == ["Paula Participant"]
    summary = await seats.usage_summary(tenant_a.owner_ctx)
    assert summary is not None
    assert (summary.used, summary.capacity, summary.remaining, summary.refused) == (1, 1, 0, 2)
    refusals = [s for s in await mail_to(tenant_a.owner.email) if "turned away" in s]
    assert len(refusals) == 1  # two refusals, one mail that day
    assert [s for s in await mail_to(tenant_b.owner.email) if "turned away" in s] == []
    banner = await seats.banner(tenant_a.owner_ctx)
    assert banner is not None
    assert banner.message == seats.BLOCK_BANNER
    # Paula, already seated, still resumes
    assert (await start_or_resume(paula.ctx, campaign.id)).status == "started"


async def test_warn_lets_the_participant_in_and_shows_the_admins_a_banner(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="warn", seats=1)
    campaign = await make_campaign(tenant_a)
    assert await seats.banner(tenant_a.owner_ctx) is None
    for name in ("Ann", "Ben"):
        person = await make_participant(tenant_a, f"{name} Participant")
        await start_or_resume(person.ctx, campaign.id)
    assert [r["overage"] for r in await usage_rows(tenant_a)] == [False, True]
    banner = await seats.banner(tenant_a.owner_ctx)
    assert banner is not None
    assert (banner.message, banner.params) == (seats.WARN_BANNER, {"used": 2, "capacity": 1})
    assert await seats.banner(tenant_a.member_ctx) is None  # admins only
    assert await seats.banner(tenant_b.owner_ctx) is None


async def test_bill_lets_the_participant_in_and_counts_the_overage_for_the_invoice(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="bill", seats=1)
    campaign = await make_campaign(tenant_a)
    for name in ("Ann", "Ben", "Cid"):
        person = await make_participant(tenant_a, f"{name} Participant")
        await start_or_resume(person.ctx, campaign.id)
    summary = await seats.usage_summary(tenant_a.owner_ctx)
    assert summary is not None
    assert (summary.used, summary.capacity, summary.overage) == (3, 1, 2)
    after = summary.period_start + timedelta(seconds=1)  # the periods begun before it
    [overage] = await seats.unbilled_overage(tenant_a.owner_ctx, after)
    assert overage.seats == 2
    assert await seats.unbilled_overage(tenant_b.owner_ctx, after) == []
    assert await seats.banner(tenant_a.owner_ctx) is None


async def test_two_really_concurrent_starts_for_the_last_seat_take_it_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=1)
    campaign = await make_campaign(tenant_a)
    ann = await make_participant(tenant_a, "Ann Participant")
    ben = await make_participant(tenant_a, "Ben Participant")
    # each start opens its own transaction on its own pooled connection
    results = await asyncio.gather(
        start_or_resume(ann.ctx, campaign.id),
        start_or_resume(ben.ctx, campaign.id),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, SeatsExhausted)]
    started = [r for r in results if not isinstance(r, BaseException)]
    assert (len(started), len(refused)) == (1, 1), results
    assert len(await usage_rows(tenant_a)) == 1
    assert await used(tenant_a) == 1
    assert await participations(tenant_a) == 1


async def _queued_on_the_seat_check(count: int) -> None:
    """Wait until `count` transactions are inside the seat check's statement, i.e. queued
    on the period's row (a condition, not a duration: fails after many looks)."""
    assert database.DB.pool is not None
    for _ in range(2000):
        async with database.DB.pool.acquire() as connection:
            waiting = await connection.fetchval(
                """SELECT count(*) FROM pg_stat_activity WHERE state = 'active'
                   AND query LIKE '%INSERT INTO seat_balance AS b%'
                   AND query NOT LIKE '%pg_stat_activity%'"""
            )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} seat checks never queued together")


async def test_starts_queued_on_the_period_row_take_the_last_seat_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=2)
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    await start_or_resume(paula.ctx, campaign.id)  # the period's row exists: one seat left
    ann = await make_participant(tenant_a, "Ann Participant")
    ben = await make_participant(tenant_a, "Ben Participant")
    async with as_tenant(tenant_a.id):
        # Hold the period's row: both starts reach their seat check and wait there together.
        await fetch("SELECT id FROM seat_balance WHERE tenant_id = $1 FOR UPDATE", tenant_a.id)
        starts = [
            # a fresh context each: a task outside this test's open transaction
            asyncio.create_task(start_or_resume(p.ctx, campaign.id), context=Context())
            for p in (ann, ben)
        ]
        await _queued_on_the_seat_check(2)
    results = await asyncio.gather(*starts, return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["ParticipationView", "SeatsExhausted"]
    assert await used(tenant_a) == 2
    assert len(await usage_rows(tenant_a)) == 2
    assert await participations(tenant_a) == 2


async def test_two_concurrent_starts_by_one_learner_count_one_seat(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, kind="per_seat", seats=5)
    first = await make_campaign(tenant_a)
    second = await make_campaign(tenant_a, name="Second check")
    paula = await make_participant(tenant_a)
    await asyncio.gather(
        start_or_resume(paula.ctx, first.id),
        start_or_resume(paula.ctx, second.id),
        start_or_resume(paula.ctx, first.id),
    )
    assert len(await usage_rows(tenant_a)) == 1
    assert await used(tenant_a) == 1


# --- alerts --------------------------------------------------------------------------------


async def test_the_admins_are_alerted_at_80_and_100_percent_once_each_per_period(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="warn", seats=5)
    campaign = await make_campaign(tenant_a)

    async def alerts() -> list[str]:
        return [s for s in await mail_to(tenant_a.owner.email) if "seats are used" in s]

    for index in range(3):
        person = await make_participant(tenant_a, f"P{index} Participant")
        await start_or_resume(person.ctx, campaign.id)
    assert await alerts() == []
    fourth = await make_participant(tenant_a, "Dee Participant")
    outcome_before = len(await alerts())
    await start_or_resume(fourth.ctx, campaign.id)  # 4 of 5: 80 %
    assert len(await alerts()) == outcome_before + 1
    assert "80%" in (await alerts())[0]
    fifth = await make_participant(tenant_a, "Eve Participant")
    await start_or_resume(fifth.ctx, campaign.id)  # 5 of 5: 100 %
    assert len(await alerts()) == 2
    assert "all your seats" in (await alerts())[0]
    # more seats bring usage under 80 % again; crossing it again alerts no one
    await seats_pack(tenant_a, 5)
    for index in range(5):
        person = await make_participant(tenant_a, f"Q{index} Participant")
        await start_or_resume(person.ctx, campaign.id)
    assert await used(tenant_a) == 10
    assert len(await alerts()) == 2
    assert [s for s in await mail_to(tenant_b.owner.email) if "seats are used" in s] == []


async def test_one_seat_reaching_both_thresholds_sends_one_alert(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=1)
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    await start_or_resume(paula.ctx, campaign.id)
    alerts = [s for s in await mail_to(tenant_a.owner.email) if "seats are used" in s]
    assert len(alerts) == 1
    assert "all your seats" in alerts[0]


# --- suspended subscription ----------------------------------------------------------------


async def test_a_suspended_subscription_turns_new_participants_away_but_lets_started_ones_finish(
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    test_bank: Bank,  # noqa: F811
) -> None:
    await subscribe_to(tenant_a, kind="per_seat", seats=10)
    campaign = await make_campaign(tenant_a)
    free = await make_campaign(tenant_a, name="Free", consumes_seat=False)
    paula = await make_participant(tenant_a)
    started = await start_or_resume(paula.ctx, campaign.id)
    await transition(tenant_a.owner_ctx, "past_due", reason="card declined", at=NOW)
    await transition(tenant_a.owner_ctx, "suspended", reason="grace period over", at=NOW)
    for target in (campaign, free):
        newcomer = await make_participant(tenant_a, "Nina Newcomer")
        with pytest.raises(Forbidden) as refused:
            await start_or_resume(newcomer.ctx, target.id)
        assert refused.value.message == seats.NOT_TAKING_PARTICIPANTS
    resumed = await start_or_resume(paula.ctx, campaign.id)
    assert resumed.id == started.id
    view = await current_challenge(paula.ctx, started.id)
    assert view is not None
    answered = await answer(
        paula.ctx, started.id, view.challenge_id, Simulee(test_bank, 0.0).respond(view)
    )
    assert answered.next_challenge is not None
    banner = await seats.banner(tenant_a.owner_ctx)
    assert banner is not None
    assert banner.message == seats.SUSPENDED_BANNER
    # tenant B, without a subscription, is not affected
    campaign_b = await make_campaign(tenant_b)
    other = await make_participant(tenant_b, "Olga Other")
    assert (await start_or_resume(other.ctx, campaign_b.id)).status == "started"


# --- seat packs ----------------------------------------------------------------------------


async def test_packs_add_seats_while_valid_and_removed_ones_stop_counting(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribe_to(tenant_a, policy="block", seats=2)
    today = datetime.now(UTC).date()  # not NOW's: a run may cross midnight since import
    expired = await seats.add_seat_pack(
        tenant_a.owner_ctx,
        STAFF,
        SeatPackFields(seats=50, starts_on=date(2020, 1, 1), ends_on=today - timedelta(days=1)),
    )
    future = await seats.add_seat_pack(
        tenant_a.owner_ctx,
        STAFF,
        SeatPackFields(seats=70, starts_on=today + timedelta(days=1), category="public"),
    )
    # a year of validity by default, both days included
    assert future.ends_on == future.starts_on.replace(year=future.starts_on.year + 1) - timedelta(
        days=1
    )
    extra = await seats_pack(tenant_a, 3)
    summary = await seats.usage_summary(tenant_a.owner_ctx)
    assert summary is not None
    assert summary.capacity == 5
    await seats.remove_seat_pack(tenant_a.owner_ctx, STAFF, extra.id, at=NOW)
    summary = await seats.usage_summary(tenant_a.owner_ctx)
    assert summary is not None
    assert summary.capacity == 2
    with pytest.raises(NotFound):
        await seats.remove_seat_pack(tenant_a.owner_ctx, STAFF, extra.id, at=NOW)
    with pytest.raises(NotFound):  # another tenant's pack
        await seats.remove_seat_pack(tenant_b.owner_ctx, STAFF, expired.id, at=NOW)
    async with as_tenant(tenant_a.id):
        actions = await fetch(
            """SELECT action, actor_label FROM audit_event
               WHERE tenant_id = $1 AND action LIKE 'billing.seat_pack.%' ORDER BY occurred_at""",
            tenant_a.id,
        )
    assert [a["action"] for a in actions] == [
        "billing.seat_pack.added",
        "billing.seat_pack.added",
        "billing.seat_pack.added",
        "billing.seat_pack.added",
        "billing.seat_pack.removed",
    ]
    assert {a["actor_label"] for a in actions} == {STAFF.actor.label}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (SeatPackFields(seats=0, starts_on=date(2026, 1, 1)), "seats"),
        (SeatPackFields(seats=-3, starts_on=date(2026, 1, 1)), "seats"),
        (SeatPackFields(seats=1_000_001, starts_on=date(2026, 1, 1)), "seats"),
        (SeatPackFields(seats=5, starts_on=date(2026, 1, 1), ends_on=date(2025, 1, 1)), "ends_on"),
        (SeatPackFields(seats=5, starts_on=date(2026, 1, 1), category="gold"), "category"),
        (SeatPackFields(seats=5, starts_on=date(2026, 1, 1), reference="x" * 101), "reference"),
    ],
)
async def test_a_bad_pack_is_refused_and_nothing_is_written(
    tenant_a: TenantFixture, tenant_b: TenantFixture, fields: SeatPackFields, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await seats.add_seat_pack(tenant_a.owner_ctx, STAFF, fields)
    assert refused.value.field == field
    async with as_tenant(tenant_a.id):
        assert await fetch("SELECT 1 FROM seat_pack WHERE tenant_id = $1", tenant_a.id) == []


async def test_only_staff_with_the_billing_permission_add_packs(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    from dataclasses import replace

    support = replace(STAFF, permissions=frozenset())
    with pytest.raises(Forbidden):
        await seats.add_seat_pack(
            tenant_a.owner_ctx, support, SeatPackFields(seats=5, starts_on=NOW.date())
        )


# --- statements ----------------------------------------------------------------------------


def _kinds(sent: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in sent]


async def test_the_seat_check_costs_one_statement_and_none_without_subscription(
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    statements: list[str],
) -> None:
    await subscribe_to(tenant_b, kind="per_seat", seats=10)
    costs: dict[str, list[str]] = {}
    for tenant in (tenant_a, tenant_b):
        campaign = await make_campaign(tenant)
        person = await make_participant(tenant)
        await start_or_resume(await _warm(tenant), campaign.id)  # caches filled
        statements.clear()
        started = await start_or_resume(person.ctx, campaign.id)
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        costs[tenant.slug] = list(statements)
        statements.clear()
        await start_or_resume(person.ctx, campaign.id)
        await asyncio.sleep(0)
        costs[tenant.slug + "-resume"] = list(statements)
        assert started.status == "started"
    unbilled, billed = costs[tenant_a.slug], costs[tenant_b.slug]
    # the participation start as it was: BEGIN (with the tenant's SETs), the campaign (with the
    # subscription's status), the learner, the participation, seen answers, the assessment
    assert _kinds(unbilled) == [
        "BEGIN;",
        "SELECT",
        "WITH",
        "INSERT",
        "SELECT",
        "INSERT",
        "COMMIT",
    ]
    seat_checks = [s for s in billed if "seat_balance" in s]
    assert len(seat_checks) == 1
    assert _kinds([s for s in billed if s not in seat_checks]) == _kinds(unbilled)
    assert not any("seat_" in s for s in unbilled)
    assert _kinds(costs[tenant_a.slug + "-resume"]) == _kinds(costs[tenant_b.slug + "-resume"])
    assert not any("seat_" in s for s in costs[tenant_b.slug + "-resume"])


async def _warm(tenant: TenantFixture) -> Any:
    """A participant's context whose start fills the process caches (withdrawn challenges,
    exposure ledgers, the frozen bank) before the statements are counted."""
    return (await make_participant(tenant, "Warm Up")).ctx
