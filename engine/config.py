"""What a campaign can configure about its adaptive test: estimation, selection, rules, stopping.

Configurations are frozen dataclasses: one is built per campaign (or per simulation) and shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from engine.estimation import Estimator, Grid, Prior


class Selector(StrEnum):
    """How items are ranked at the current estimate."""

    MAX_INFO = "max-info"  # Fisher information at the point estimate
    POSTERIOR_INFO = "posterior-info"  # Fisher information averaged over the posterior


class Exposure(StrEnum):
    """How the top-ranked item is protected from over-exposure."""

    NONE = "none"
    RANDOMESQUE = "randomesque"  # uniform pick among the top `randomesque_size`
    GEOMETRIC = "geometric"  # Pix: geometric pick among the top 5 with p = 0.51
    RESTRICTED = "restricted"  # max-info among items under the exposure cap
    SYMPSON_HETTER = "sympson-hetter"  # administer with a per-item probability K_i
    PROGRESSIVE_RESTRICTED = "progressive-restricted"  # Revuelta & Ponsoda (1998)
    PRICED = "priced"  # max-info × exposure price (cap, soft ceiling, floor); see ADR 0004


class StopReason(StrEnum):
    """Why a test ended."""

    MAX_LENGTH = "max_length"
    SE_REACHED = "se_threshold"
    EXHAUSTED = "no_eligible_item"


@dataclass(frozen=True)
class ContentRules:
    """Content constraints on the sequence of challenges; each one can be switched off.

    - `cover_competences`: go through every competence of the target profile before repeating
      one (a new round starts when each has been served, or when the rest has nothing left);
    - `no_consecutive_competence`: never two challenges in a row from the same competence,
      unless no other competence has anything left (a one-competence profile);
    - `one_per_tube`: at most one challenge per tube;
    - `one_per_skill`: never the same skill twice;
    - `locale_only`: only challenges available in the participant's locale.
    Excluded ids (retired, seen before) are always honoured.
    """

    cover_competences: bool = True
    no_consecutive_competence: bool = True
    one_per_tube: bool = True
    one_per_skill: bool = True
    locale_only: bool = True

    @classmethod
    def off(cls) -> ContentRules:
        """Every rule disabled (pure psychometric selection)."""
        return cls(False, False, False, False, False)


@dataclass(frozen=True)
class Stopping:
    """When a test ends: after `max_length` scored items, or once the standard error is below
    `se_threshold` with at least `min_length` scored items. Fixed length: min = max."""

    min_length: int = 0
    max_length: int = 20
    se_threshold: float | None = None

    def reason(self, answered: int, se: float) -> StopReason | None:
        """The reason to stop now, or None to continue."""
        if answered >= self.max_length:
            return StopReason.MAX_LENGTH
        if self.se_threshold is not None and answered >= self.min_length and se < self.se_threshold:
            return StopReason.SE_REACHED
        return None

    @classmethod
    def fixed(cls, length: int) -> Stopping:
        """Exactly `length` scored items."""
        return cls(min_length=length, max_length=length)


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs to run one adaptive test.

    `competences` restricts the test to a target profile (competence codes; None = all).
    `max_exposure` is the target maximum exposure rate for Sympson–Hetter, (progressive-)
    restricted and priced. `pretest_rate` is the probability that a served item is an unscored
    pretest item (when one is eligible). The progressive method's random share decays as
    1 − (served / `progressive_length`)^`progressive_power` (length defaults to the maximum).

    Priced exposure control ranks items by information × (1 + μ) / (1 + λ), from the ledger's
    exposure rates: the price λ = `price_slope` · max(0, rate / max_exposure − `price_onset`)
    makes items approaching the cap give way to nearly as good ones, the bonus
    μ = `floor_bonus` · max(0, 1 − rate / `min_exposure`) brings items that are almost never
    served back into use, and items at the cap are ineligible as in *restricted*. The first
    `opening_randomesque` items of a test are a uniform pick among the `randomesque_size` best.
    """

    estimator: Estimator = Estimator.EAP
    grid: Grid = field(default_factory=Grid)
    prior: Prior = field(default_factory=Prior)
    selector: Selector = Selector.MAX_INFO
    exposure: Exposure = Exposure.NONE
    max_exposure: float = 1.0
    randomesque_size: int = 5
    geometric_p: float = 0.51
    progressive_power: float = 0.5
    progressive_length: int | None = None
    price_slope: float = 5.0
    price_onset: float = 0.9
    min_exposure: float = 0.002
    floor_bonus: float = 5.0
    opening_randomesque: int = 2
    rules: ContentRules = field(default_factory=ContentRules)
    stopping: Stopping = field(default_factory=Stopping)
    competences: tuple[str, ...] | None = None
    pretest_rate: float = 0.0
