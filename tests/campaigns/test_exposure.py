"""The exposure ledger (ADR 0017): recounted from every tenant's tests, read through a cache,
and honoured by campaigns made with a maximum exposure rate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from campaigns import exposure
from campaigns.participation.answering import current_challenge
from campaigns.participation.start import start_or_resume
from core import database
from engine import Bank
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.conftest import TenantFixture


@pytest.fixture(autouse=True)
async def _empty_ledger(db: str) -> AsyncIterator[None]:
    """The ledger is global: each test starts and ends without one."""
    async with database.global_transaction():
        await database.execute("DELETE FROM bank_exposure")
    exposure.forget()
    yield
    async with database.global_transaction():
        await database.execute("DELETE FROM bank_exposure")
    exposure.forget()


async def test_the_ledger_counts_every_tenants_recent_tests(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank, owner_url: str
) -> None:
    for tenant in (tenant_a, tenant_b):
        campaign = await make_campaign(tenant)
        person = await make_participant(tenant)
        participation = await start_or_resume(person.ctx, campaign.id)
        await take_test(person.ctx, participation.id, Simulee(test_bank, 0.0))
    assert await exposure.refresh_exposure({}) >= 1
    # what the ledger says, against a count over every tenant (the superuser bypasses RLS)
    admin = await asyncpg.connect(owner_url)
    try:
        tests = await admin.fetchval(
            """SELECT count(*) FROM assessment s
               JOIN participation p ON p.tenant_id = s.tenant_id AND p.id = s.participation_id
               JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
               WHERE c.bank_version = $1""",
            test_bank.version,
        )
        served = dict(
            await admin.fetch(
                """SELECT a.challenge_id, count(*) FROM answer a
                   JOIN participation p ON p.tenant_id = a.tenant_id AND p.id = a.participation_id
                   JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
                   WHERE c.bank_version = $1 AND NOT a.pretest GROUP BY a.challenge_id""",
                test_bank.version,
            )
        )
    finally:
        await admin.close()
    stored = (await exposure.exposure_ledgers())[test_bank.version]
    assert stored.tests == tests >= 2
    assert stored.served == served


async def test_too_few_tests_make_no_ledger(test_bank: Bank) -> None:
    ledgers = {test_bank.version: exposure.StoredLedger(exposure.MIN_TESTS - 1, {})}
    assert exposure.ledger_for(test_bank, ledgers) is None
    first = test_bank.pool.ids[0]
    ledgers = {test_bank.version: exposure.StoredLedger(exposure.MIN_TESTS, {first: 7})}
    ledger = exposure.ledger_for(test_bank, ledgers)
    assert ledger is not None
    assert ledger.sessions == exposure.MIN_TESTS
    assert ledger.counts[0] == 7
    assert ledger.counts[1:].sum() == 0


async def test_challenges_over_the_cap_give_way(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    # every challenge but those of competence 1.1 was served in every recent test
    over = [ch.id for ch in test_bank.challenges if test_bank.skills[ch.skill].competence != "1.1"]
    async with database.global_transaction():
        await database.execute(
            "INSERT INTO bank_exposure (bank_version, tests) VALUES ($1, 1000)", test_bank.version
        )
        await database.execute(
            """INSERT INTO challenge_exposure (bank_version, challenge_id, served)
               SELECT $1, unnest($2::text[]), 1000""",
            test_bank.version,
            over,
        )
    exposure.forget()
    campaign = await make_campaign(tenant_a)
    for i in range(4):
        person = await make_participant(tenant_a, f"Person {i}")
        participation = await start_or_resume(person.ctx, campaign.id)
        view = await current_challenge(person.ctx, participation.id)
        assert view is not None
        assert test_bank.skills[test_bank.challenge_by_id[view.challenge_id].skill].competence == (
            "1.1"
        )
