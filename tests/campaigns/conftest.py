"""Campaign fixtures: a small bank of our own (three competences, nine topics, 54 scored
challenges of the three types, one pretest and one retired challenge), participants, and a
simulated participant who answers like someone of a given ability.

Every test module here uses the two tenants of tests/conftest.py, and runs on the test bank.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import numpy as np
import pytest

from campaigns import content
from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.participation.answering import (
    AnswerOutcome,
    ChallengeView,
    answer,
    current_challenge,
)
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.participation.views import ParticipationView
from campaigns.service import create_campaign
from core import database
from engine import Bank, Challenge, get_bank
from tenants.context import Actor, TenantContext
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

BANK = Path(__file__).parent / "bank"


@pytest.fixture(scope="module")
def test_bank() -> Iterator[Bank]:
    """The test bank is in use for the module that asks for it (by argument, or with
    `pytest.mark.usefixtures("test_bank")` in another package, which imports it), and the
    bank in use before it is again after the module's last test.

    Module scope, not package scope: a package fixture imported into another package's
    module is torn down only when this package's tests end, so every package run in between
    (tests/browser after tests/billing) got the test bank instead of the demo bank."""
    previous = content.bank_dir()
    content.use_bank(BANK)
    yield get_bank(BANK)
    content.use_bank(previous)


@pytest.fixture(scope="module", autouse=True)
def _campaigns_on_the_test_bank(test_bank: Bank) -> None:
    """Every module of tests/campaigns runs on the test bank."""


@dataclass(frozen=True)
class Participant:
    """A person with an account who is not a member of the tenant, and their context."""

    ctx: TenantContext
    user_id: Any
    email: str


async def make_participant(tenant: TenantFixture, name: str = "Paula Participant") -> Participant:
    user = await make_user(name)
    ctx = participant_context(
        tenant.owner_ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email)
    )
    return Participant(ctx, user.id, user.email)


class StartedTest(NamedTuple):
    """A campaign of the tenant, a participant, their test just started, its first question."""

    campaign: Campaign
    participant: Participant
    participation: ParticipationView
    view: ChallengeView


async def start_a_test(tenant: TenantFixture) -> StartedTest:
    """What most participation tests begin with: a campaign, Paula, her test started and the
    challenge it shows first."""
    campaign = await make_campaign(tenant)
    paula = await make_participant(tenant)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    return StartedTest(campaign, paula, participation, view)


async def make_campaign(tenant: TenantFixture, **overrides: Any) -> Campaign:
    """An active assessment campaign over the whole test bank, by the tenant's owner."""
    values: dict[str, Any] = {"name": "Skills check", "profile_key": "digcomp"}
    values.update(overrides)
    draft = values.pop("draft", False)
    return await create_campaign(tenant.owner_ctx, CampaignFields(**values), draft=draft)


async def learner_participation(
    tenant: TenantFixture,
    campaign_id: UUID,
    user_id: UUID,
    status: str,
    external_id: str | None = None,
) -> UUID:
    """A learner of the tenant for the account `user_id` and their first participation in
    the campaign, in `status` (completed now unless "started"), written directly; its id."""
    learner, participation = uuid4(), uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            "INSERT INTO learner (tenant_id, id, user_id, name) VALUES ($1, $2, $3, 'Pat')",
            tenant.id,
            learner,
            user_id,
        )
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                   status, external_id, completed_at)
               VALUES ($1, $2, $3, $4, 1, $5, $6, CASE WHEN $7 THEN now() END)""",
            tenant.id,
            participation,
            campaign_id,
            learner,
            status,
            external_id,
            status != "started",
        )
    return participation


def right_answer(challenge: Challenge, locale: str = "en") -> Any:
    if challenge.type == "short_text":
        assert isinstance(challenge.solution, dict)
        return challenge.solution[locale][0]
    assert isinstance(challenge.solution, tuple)
    return challenge.solution[0] if challenge.type == "single_choice" else list(challenge.solution)


def wrong_answer(challenge: Challenge, locale: str = "en") -> Any:
    if challenge.type == "short_text":
        return "certainly not this"
    assert isinstance(challenge.solution, tuple)
    if challenge.type == "single_choice":
        return (challenge.solution[0] + 1) % len(challenge.proposals[locale])
    return [1]


class Simulee:
    """Answers like a person of ability `theta` under the bank's IRT parameters (seeded)."""

    def __init__(self, bank: Bank, theta: float, seed: int = 7) -> None:
        self.bank = bank
        self.theta = theta
        self.rng = np.random.default_rng(seed)

    def respond(self, view: ChallengeView) -> Any:
        challenge = self.bank.challenge_by_id[view.challenge_id]
        irt = challenge.irt
        p = irt.c + (irt.d - irt.c) / (1 + math.exp(-irt.a * (self.theta - irt.b)))
        if self.rng.random() < p:
            return right_answer(challenge, view.locale)
        return wrong_answer(challenge, view.locale)


async def take_test(
    ctx: TenantContext, participation_id: Any, simulee: Simulee, limit: int = 100
) -> list[AnswerOutcome]:
    """Answer until the test ends; the outcomes in order."""
    outcomes: list[AnswerOutcome] = []
    view = await current_challenge(ctx, participation_id)
    while view is not None and len(outcomes) < limit:
        outcome = await answer(ctx, participation_id, view.challenge_id, simulee.respond(view))
        outcomes.append(outcome)
        view = outcome.next_challenge
    return outcomes
