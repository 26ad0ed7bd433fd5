"""The adaptive test of a campaign, without I/O: engine configuration from the frozen
snapshot, the next challenge from the stored answers, the result at the end.

Everything here is a function of (bank version, snapshot, answers, seed), so the service can
recompute any step and a resumed test shows exactly the challenge it showed before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any, TypedDict

import numpy as np

from campaigns.profile_catalogue import MAX_LEVEL, ProfileSpec, eligible_challenges
from core.errors import Invalid
from core.validation import clean_text
from engine import (
    Bank,
    Challenge,
    ContentRules,
    EngineConfig,
    Exposure,
    ExposureLedger,
    Resume,
    Score,
    ScoringConfig,
    Step,
    Stopping,
    is_correct,
    level_cuts_from_bank,
    next_step,
    score,
)

#: Test length and precision of new campaigns (frozen into each campaign's snapshot).
MIN_LENGTH = 10
MAX_LENGTH = 30
SE_THRESHOLD = 0.3
#: No challenge in more than this share of recent tests, service-wide (ADR 0017).
MAX_EXPOSURE = 0.25


class EngineSnapshot(TypedDict):
    """The engine part of a campaign's snapshot, stored as JSON with the campaign."""

    min_length: int
    max_length: int
    se_threshold: float
    one_per_tube: bool
    exposure: str
    max_exposure: float


def engine_settings(bank: Bank, spec: ProfileSpec) -> EngineSnapshot:
    """The engine part of a new campaign's snapshot.

    One challenge per tube spreads a test over its topics, but a small profile would then stop
    after a handful of questions: below `MIN_LENGTH` tubes, the rule is relaxed to one
    challenge per skill, so the test climbs levels within a tube instead.
    """
    eligible = eligible_challenges(bank, spec)
    tubes = {bank.skills[bank.challenge_by_id[cid].skill].tube for cid in eligible}
    return {
        "min_length": MIN_LENGTH,
        "max_length": MAX_LENGTH,
        "se_threshold": SE_THRESHOLD,
        "one_per_tube": len(tubes) >= MIN_LENGTH,
        "exposure": Exposure.PROGRESSIVE_RESTRICTED.value,
        "max_exposure": MAX_EXPOSURE,
    }


@dataclass(frozen=True)
class Plan:
    """What every step of a campaign's test needs, derived once per (bank, snapshot)."""

    spec: ProfileSpec
    config: EngineConfig
    #: challenges of the chosen competences that the profile leaves out (tubes, level caps)
    excluded: frozenset[str]
    scoring: ScoringConfig


@lru_cache(maxsize=64)
def _scoring(bank: Bank) -> ScoringConfig:
    return ScoringConfig(level_cuts=level_cuts_from_bank(bank))


@lru_cache(maxsize=1024)
def plan(bank: Bank, snapshot: str) -> Plan:
    """The plan of a campaign from its snapshot (the JSON text stored with it); cached, as a
    campaign's every answer needs it."""
    data = json.loads(snapshot)
    spec = ProfileSpec.from_json(data["profile"])
    eng = data["engine"]
    config = EngineConfig(
        stopping=Stopping(
            min_length=int(eng["min_length"]),
            max_length=int(eng["max_length"]),
            se_threshold=eng["se_threshold"],
        ),
        competences=spec.competences,
        exposure=Exposure(eng["exposure"]),
        # campaigns made before the ledger have no cap (ADR 0017)
        max_exposure=float(eng.get("max_exposure", 1.0)),
        rules=ContentRules(one_per_tube=bool(eng["one_per_tube"])),
    )
    chosen = set(spec.competences)
    eligible = eligible_challenges(bank, spec)
    excluded = frozenset(
        ch.id
        for ch in bank.challenges
        if bank.skills[ch.skill].competence in chosen and ch.id not in eligible
    )
    return Plan(spec=spec, config=config, excluded=excluded, scoring=_scoring(bank))


def step(
    bank: Bank,
    the_plan: Plan,
    responses: Sequence[tuple[str, int]],
    seed: int,
    locale: str,
    seen_before: Iterable[str] = (),
    withdrawn: Iterable[str] = (),
    exposure: ExposureLedger | None = None,
    resume: Resume | None = None,
) -> Step:
    """The engine's step after `responses`; the draw is seeded by (seed, answers so far), so
    the same state always gives the same challenge. `withdrawn` challenges (reported, pending
    review: `campaigns.problem_reports`) are never selected; one already shown stays answerable.
    `exposure` is the service-wide ledger (`campaigns.exposure`): challenges served in more
    than the campaign's maximum rate of recent tests give way to others. `resume`, the state
    the previous step stored, spares estimating the earlier answers again (the same step)."""
    return next_step(
        bank.pool,
        responses,
        the_plan.config,
        np.random.default_rng([seed, len(responses)]),
        locale=locale,
        excluded=chain(the_plan.excluded, seen_before, withdrawn),
        exposure=exposure,
        resume=resume,
    )


@dataclass(frozen=True)
class ResultData:
    """A finished test's result, capped by the profile, ready to store."""

    theta: float
    se: float
    level: int
    score: int
    competences: dict[str, dict[str, Any]]
    mastered_skills: tuple[str, ...]


def result(bank: Bank, the_plan: Plan, responses: Sequence[tuple[str, int]]) -> ResultData:
    """Score the answers over the profile's competences; a competence's level and points stop
    at its cap (its harder skills were never asked)."""
    spec = the_plan.spec
    raw: Score = score(bank, responses, the_plan.scoring, competences=spec.competences)
    per_level = the_plan.scoring.points_per_level
    competences: dict[str, dict[str, Any]] = {}
    for code, comp in raw.competences.items():
        cap = spec.max_level(code)
        competences[code] = {
            "theta": comp.theta,
            "se": comp.se,
            "level": min(comp.level, cap),
            "points": min(comp.points, cap * per_level),
            "answers": comp.answers,
        }
    top = max((spec.max_level(c) for c in spec.competences), default=MAX_LEVEL)
    return ResultData(
        theta=raw.theta,
        se=raw.se,
        level=min(raw.level, top),
        score=sum(c["points"] for c in competences.values()),
        competences=competences,
        mastered_skills=raw.mastered_skills,
    )


def check_answer(challenge: Challenge, locale: str, value: Any) -> tuple[Any, bool]:
    """The answer in its stored form and whether it is right; `Invalid` for a value of the
    wrong shape for the challenge (an index out of range, text for a choice…)."""
    if challenge.type == "short_text":
        text = clean_text(value if isinstance(value, str) else None, "answer", max_length=500)
        return text, is_correct(challenge, text, locale)
    count = len(challenge.proposals.get(locale, ()))
    if challenge.type == "single_choice":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
            raise Invalid("Choose one of the offered answers.", field="answer")
        chosen: int | list[int] = value
    else:
        values = list(value) if isinstance(value, list | tuple) else []
        if (
            not values
            or any(
                isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < count for v in values
            )
            or len(set(values)) != len(values)
        ):
            raise Invalid("Choose one or more of the offered answers.", field="answer")
        chosen = sorted(values)
    return chosen, is_correct(challenge, chosen, locale)
