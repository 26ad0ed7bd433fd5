"""Each answer resumes the engine from the state the previous one stored (ADR 0023): at every
answer of a whole test, what is stored (next challenge, theta, se, posterior) is what
replaying every answer from the start gives; a test whose state is missing replays."""

from __future__ import annotations

from typing import Any

import numpy as np

from campaigns import assessment
from campaigns.content import frozen_bank
from campaigns.exposure import ledger_for
from campaigns.participation.answering import answer, current_challenge, prepare_answer
from campaigns.participation.start import start_or_resume
from core import database
from engine import Bank, Resume
from tests.campaigns.conftest import Simulee, make_campaign, make_participant
from tests.conftest import TenantFixture
from tests.db import as_tenant

_STATE = """
SELECT s.answered, s.current_challenge_id, s.theta, s.se, s.posterior, s.seed, s.locale,
       s.seen_before, c.profile_snapshot, c.bank_version,
       coalesce((SELECT array_agg(a.challenge_id ORDER BY a.position) FROM answer a
                 WHERE a.tenant_id = $1 AND a.participation_id = $2), '{}') AS ids,
       coalesce((SELECT array_agg(a.correct::int ORDER BY a.position) FROM answer a
                 WHERE a.tenant_id = $1 AND a.participation_id = $2), '{}') AS scores
FROM assessment s
JOIN participation p ON p.tenant_id = $1 AND p.id = s.participation_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
WHERE s.tenant_id = $1 AND s.participation_id = $2
"""


async def _stored(tenant: TenantFixture, participation_id: Any) -> dict[str, Any]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(_STATE, tenant.id, participation_id)
    return rows[0]


async def _replayed(row: dict[str, Any]) -> Any:
    """The step replaying every stored answer from the start, with the service's inputs."""
    bank = frozen_bank(row["bank_version"])
    the_plan = assessment.plan(bank, row["profile_snapshot"])
    responses = list(zip(row["ids"], row["scores"], strict=True))
    inputs = await prepare_answer()
    return assessment.step(
        bank,
        the_plan,
        responses,
        row["seed"],
        row["locale"],
        row["seen_before"],
        inputs.withdrawn,
        ledger_for(bank, inputs.ledgers),
    )


async def test_every_stored_state_is_the_replayed_one(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="en")
    simulee = Simulee(test_bank, theta=0.5)
    view = await current_challenge(paula.ctx, participation.id)
    answers = 0
    while view is not None:
        outcome = await answer(
            paula.ctx, participation.id, view.challenge_id, simulee.respond(view)
        )
        answers += 1
        row = await _stored(tenant_a, participation.id)
        replayed = await _replayed(row)
        assert row["answered"] == answers
        assert row["current_challenge_id"] == replayed.next_item
        assert row["theta"] == replayed.theta  # exactly: float8 keeps every bit
        assert row["se"] == replayed.se
        assert np.array_equal(Resume.weights_from_bytes(row["posterior"]), replayed.posterior)
        view = outcome.next_challenge
    assert answers >= 10


async def test_a_test_without_a_stored_state_replays_its_answers(
    tenant_a: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="en")
    simulee = Simulee(test_bank, theta=-0.5, seed=3)
    for _ in range(4):
        view = await current_challenge(paula.ctx, participation.id)
        assert view is not None
        await answer(paula.ctx, participation.id, view.challenge_id, simulee.respond(view))
    # as a test begun before the state was kept (or a state put back by hand)
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE assessment SET posterior = NULL WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            participation.id,
        )
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    await answer(paula.ctx, participation.id, view.challenge_id, simulee.respond(view))
    row = await _stored(tenant_a, participation.id)
    replayed = await _replayed(row)
    assert row["current_challenge_id"] == replayed.next_item
    assert row["theta"] == replayed.theta
    assert np.array_equal(Resume.weights_from_bytes(row["posterior"]), replayed.posterior)
