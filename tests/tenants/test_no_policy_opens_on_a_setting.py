"""No policy opens every tenant's rows on a setting the runtime role can set (issue 13 §2,
ADR 0024): the webhook sweep, the back office's book and the content editors' problem-report
triage read across tenants through `SECURITY DEFINER` functions owned by the owner role, and a
runtime connection that sets `jalon.sweep`, `jalon.book` or `jalon.triage` sees no tenant's
rows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest

from campaigns.participation.answering import current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.problem_reports import forget_withdrawn, report_problem
from core import database
from tenants.context import Actor
from tenants.webhooks.delivery import dangerously_due_deliveries
from tenants.webhooks.endpoints import send_test_event
from tests.campaigns.conftest import make_campaign
from tests.conftest import HeldQueue, TenantFixture, make_user
from tests.db import as_tenant
from tests.tenants.webhooks.support import deliveries, endpoint_with_secret, make_due


async def _due_delivery(tenant: TenantFixture) -> UUID:
    endpoint_id, _ = await endpoint_with_secret(tenant, "http://127.0.0.1:9/hook")
    delivery_id = await send_test_event(tenant.owner_ctx, endpoint_id)
    await make_due(tenant, delivery_id)
    return delivery_id


async def test_the_sweep_reads_every_tenants_due_deliveries_ids_only(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    a = await _due_delivery(tenant_a)
    b = await _due_delivery(tenant_b)
    async with database.global_transaction():
        due = await dangerously_due_deliveries()
    found = {(d.tenant_id, d.id) for d in due}
    assert (tenant_a.id, a) in found
    assert (tenant_b.id, b) in found
    assert [d["id"] for d in await deliveries(tenant_a)] == [a]


async def test_a_runtime_connection_setting_jalon_sweep_sees_no_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    await _due_delivery(tenant_a)
    await _due_delivery(tenant_b)
    async with database.global_transaction():
        assert await database.fetch("SELECT current_setting('jalon.tenant_id', true) AS t") in (
            [{"t": None}],
            [{"t": ""}],
        )
        await database.execute("SET LOCAL jalon.sweep = 'webhook_delivery'")
        seen = await database.fetch("SELECT tenant_id FROM webhook_delivery")
    assert seen == []


async def test_the_function_is_the_owners_and_returns_ids_only(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    await _due_delivery(tenant_a)
    async with database.global_transaction():
        rows = await database.fetch("SELECT * FROM webhook_due_deliveries(5)")
        me = await database.fetch(
            """SELECT current_user AS runtime, pg_get_userbyid(proowner) AS owner,
                      prosecdef, proconfig FROM pg_proc WHERE proname = 'webhook_due_deliveries'"""
        )
    assert rows
    assert all(set(row.keys()) == {"tenant_id", "id", "attempts"} for row in rows)
    [function] = me
    assert function["owner"] != function["runtime"]
    assert function["prosecdef"]  # SECURITY DEFINER
    assert function["proconfig"] == ["search_path=pg_catalog, public"]


#: The tables a setting once opened across tenants (`due_sweep`, `staff_book`).
ONCE_OPENED = (
    "webhook_delivery",
    "membership",
    "subscription",
    "seat_pack",
    "seat_balance",
    "invoice",
    "invoice_line",
    "participation",
)


async def test_a_runtime_connection_setting_jalon_book_sees_no_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    await _due_delivery(tenant_a)
    async with as_tenant(tenant_b.id):  # each tenant sees its own membership
        assert await database.fetch("SELECT 1 FROM membership WHERE tenant_id = $1", tenant_b.id)
    async with database.global_transaction():  # as the book's transaction, but no staff check
        await database.execute("SET TRANSACTION READ ONLY")
        await database.execute("SET LOCAL jalon.book = 'tenants'")
        await database.execute("SET LOCAL jalon.sweep = 'webhook_delivery'")
        for table in ONCE_OPENED:
            assert await database.fetch(f"SELECT tenant_id FROM {table}") == [], table  # noqa: S608
    async with as_tenant(tenant_a.id):  # a tenant's transaction still sees its own rows only
        await database.execute("SET LOCAL jalon.book = 'tenants'")
        seen = await database.fetch("SELECT DISTINCT tenant_id FROM membership")
    assert [row["tenant_id"] for row in seen] == [tenant_a.id]


async def test_no_policy_reads_a_setting_but_the_tenant_and_the_user(db: str) -> None:
    """Every row-level-security policy tests `jalon.tenant_id` or `jalon.user_id` only."""
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT tablename, policyname, coalesce(qual, '') AS qual FROM pg_policies
               WHERE schemaname = 'public'"""
        )
    settings = {
        (row["tablename"], row["policyname"], setting)
        for row in rows
        for setting in re.findall(r"current_setting\('(jalon\.[a-z_]+)'", row["qual"])
    }
    assert settings  # the tenant policies are read
    assert {s for s in settings if s[2] not in ("jalon.tenant_id", "jalon.user_id")} == set()


@pytest.fixture
async def reported(tenant_a: TenantFixture) -> AsyncIterator[tuple[str, str]]:
    """A report with a comment of its own on the challenge a participant of tenant A is shown
    first: (challenge id, comment). Its flag is reviewed afterwards (flags are global, and
    other tests count them)."""
    comment = f"unclear {uuid4().hex[:8]}"
    campaign = await make_campaign(tenant_a)
    user = await make_user("Rita Reporter")
    ctx = participant_context(
        tenant_a.owner_ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email)
    )
    participation = await start_or_resume(ctx, campaign.id)
    view = await current_challenge(ctx, participation.id)
    assert view is not None
    outcome = await report_problem(
        ctx, participation.id, view.challenge_id, "unclear_statement", comment
    )
    assert outcome.recorded
    yield view.challenge_id, comment
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL WHERE challenge_id = $1""",
            view.challenge_id,
        )
    forget_withdrawn()


async def test_a_runtime_connection_setting_jalon_triage_reads_no_report(
    tenant_a: TenantFixture, tenant_b: TenantFixture, reported: tuple[str, str]
) -> None:
    challenge_id, comment = reported
    async with as_tenant(tenant_a.id):  # the tenant sees its own report
        mine = await database.fetch(
            "SELECT comment FROM challenge_report WHERE comment = $1", comment
        )
    assert mine == [{"comment": comment}]
    async with database.global_transaction():  # as the triage did, but no staff check
        await database.execute("SET LOCAL jalon.triage = 'challenge_report'")
        assert await database.fetch("SELECT tenant_id FROM challenge_report") == []
    async with as_tenant(tenant_b.id):  # another tenant still sees its own reports only
        await database.execute("SET LOCAL jalon.triage = 'challenge_report'")
        assert (
            await database.fetch(
                "SELECT tenant_id FROM challenge_report WHERE tenant_id <> $1", tenant_b.id
            )
            == []
        )
    async with database.global_transaction():  # only the owner's function reads across tenants
        samples = await database.fetch(
            "SELECT * FROM triage_report_samples($1::text[], 3)", [challenge_id]
        )
        [function] = await database.fetch(
            """SELECT current_user AS runtime, pg_get_userbyid(proowner) AS owner,
                      prosecdef, proconfig FROM pg_proc WHERE proname = 'triage_report_samples'"""
        )
    assert comment in [row["comment"] for row in samples]
    assert all(  # no person, no organization
        set(row.keys())
        == {
            "challenge_id",
            "locale",
            "category",
            "comment",
            "answer",
            "answer_submitted",
            "answer_correct",
            "created_at",
        }
        for row in samples
    )
    assert function["owner"] != function["runtime"]
    assert function["prosecdef"]  # SECURITY DEFINER
    assert function["proconfig"] == ["search_path=pg_catalog, public"]
