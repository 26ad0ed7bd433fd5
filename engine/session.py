"""One participant's adaptive test: state, answer updates, next-item selection, stopping.

`Session` is the stateful object (fast, used by simulations); `next_step` is the stateless call
the web app makes on every answer. Given the stored answers alone it replays them into a fresh
session, O(answers × grid) plus one selection. Given also the estimation state after the
earlier answers (`Resume`, the posterior and estimate the previous step returned), it only
closes the items they used (a few array writes each, no estimation) and estimates the new
answer: the same step to the bit, with the earlier answers' estimation O(1) (ADR 0023).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.random  # numpy loads it lazily: at a first request otherwise
from numpy.typing import NDArray

from engine import selection
from engine.config import EngineConfig, Exposure, Selector, StopReason
from engine.estimation import Estimate, Estimator, Posterior, estimate
from engine.pool import ItemPool
from engine.selection import ExposureLedger

BoolArray = NDArray[np.bool_]

_PWI_STRIDE = 5
_CAPPED = (Exposure.PROGRESSIVE_RESTRICTED, Exposure.RESTRICTED, Exposure.PRICED)
_NEG_INF = np.float32(-np.inf)
#: exposure modes whose pick is the best eligible item (no ranking beyond it)
_ARGMAX = (Exposure.NONE, Exposure.RESTRICTED, Exposure.PRICED)


@dataclass(frozen=True)
class Step:
    """The engine's answer after the answers so far.

    `next_item` is the id to serve (None when the test stops, with `stop_reason` set);
    `pretest` says the next item is an unscored pretest item; `answered` counts scored answers.
    """

    theta: float
    se: float
    next_item: str | None
    stop_reason: StopReason | None
    answered: int
    pretest: bool = False
    #: the posterior's weights on the grid after the answers, to store for the next step's
    #: `Resume` (not compared: the estimate says the same)
    posterior: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)

    def resume(self, answers: int) -> Resume | None:
        """The state to resume from after these `answers` (all the step was given); None
        when the step carries no posterior."""
        if self.posterior is None:
            return None
        return Resume(answers=answers, weights=self.posterior, theta=self.theta, se=self.se)


@dataclass(frozen=True)
class Resume:
    """The estimation state after the first `answers` stored answers, as a previous step
    left it: the posterior's `weights` on the configuration's grid and its estimate. Only
    the EAP estimator resumes (MAP and MLE look at every answer again): the others replay."""

    answers: int
    weights: NDArray[np.float64]
    theta: float
    se: float

    def to_bytes(self) -> bytes:
        """The weights as stored (float64, machine order): exact, unlike a decimal text."""
        return np.ascontiguousarray(self.weights, dtype=np.float64).tobytes()

    @staticmethod
    def weights_from_bytes(data: bytes) -> NDArray[np.float64]:
        return np.frombuffer(data, dtype=np.float64).copy()


class Session:
    """The state of one adaptive test over a shared, read-only `ItemPool`.

    Deterministic given the pool, the configuration, the answers and the state of `rng`.
    With `track_exposure`, served items are counted into `exposure` (simulations); otherwise
    the ledger is only read (the app maintains counts itself). The ledger is read once, when
    the session starts (exposure cap, priced weights): a session is one test, or one request.
    """

    def __init__(
        self,
        pool: ItemPool,
        config: EngineConfig | None = None,
        rng: np.random.Generator | None = None,
        *,
        locale: str | None = None,
        excluded: Iterable[str] = (),
        exposure: ExposureLedger | None = None,
        track_exposure: bool = False,
    ) -> None:
        self.pool = pool
        self.config = cfg = config or EngineConfig()
        self.rng = rng or np.random.default_rng()
        self.exposure = exposure
        self.track_exposure = track_exposure
        self.posterior = Posterior.start(cfg.grid, cfg.prior)
        self._estimate = (
            self.posterior.eap()
            if cfg.estimator is Estimator.EAP
            else Estimate(cfg.prior.mean if cfg.estimator is Estimator.MAP else 0.0, cfg.prior.sd)
        )
        n_comp = len(pool.competence_codes)
        start = pool.starting_masks(locale if cfg.rules.locale_only else None, cfg.competences)
        self._in_profile = start.in_profile  # read-only, shared by the pool's sessions
        self._scored_open = start.scored_open.copy()
        self._pretest_open = start.pretest_open.copy()
        index = pool.index
        closed = [i for i in map(index.get, excluded) if i is not None]
        if closed:
            self._scored_open[closed] = False
            self._pretest_open[closed] = False
        # Everything that depends on the ledger is read once per session: within a session
        # only the items it serves change counts, and those are closed anyway.
        n = len(pool)
        self._under_cap: BoolArray | None = None
        self._weights: NDArray[np.float32] | None = None
        if exposure is not None and cfg.exposure in _CAPPED:
            self._under_cap = exposure.under_cap(cfg.max_exposure)
        if exposure is not None and cfg.exposure is Exposure.PRICED:
            self._weights = selection.exposure_weights(
                exposure,
                cfg.max_exposure,
                slope=cfg.price_slope,
                onset=cfg.price_onset,
                min_rate=cfg.min_exposure,
                bonus=cfg.floor_bonus,
            )
        # The hot path's arrays, kept up to date by _close: `_gain` is the weight of each
        # servable item (exposure weight, or 1) and 0 elsewhere, so that a score is one
        # multiplication; `_penalty` is 0 / −inf for the pickers that rank every item. Both
        # honour the exposure cap. `_buffer` takes the scores: nothing is allocated per call.
        servable = self._scored_open
        if self._under_cap is not None:
            servable = servable & self._under_cap
        self._gain = np.where(
            servable, self._weights if self._weights is not None else np.float32(1.0), 0
        ).astype(np.float32, copy=False)
        self._penalty = np.where(servable, np.float32(0.0), _NEG_INF)
        self._buffer = np.empty(n, dtype=np.float32)
        self._visited = np.zeros(n_comp + 1, dtype=np.bool_)
        self._gate_competences = n_comp > 0 and (
            cfg.rules.cover_competences or cfg.rules.no_consecutive_competence
        )
        self._last_competence = -1
        if cfg.selector is Selector.POSTERIOR_INFO:
            # posterior-weighted information sums over a coarse subset of information rows
            # (every 0.25 on θ): the information curves are smooth, and it keeps the product
            # small
            rows = np.array([pool.info_row(float(t)) for t in self.posterior.grid])
            self._pwi_rows = np.unique((rows // _PWI_STRIDE) * _PWI_STRIDE)
            self._pwi_bin = np.searchsorted(self._pwi_rows, (rows // _PWI_STRIDE) * _PWI_STRIDE)
        self.items: list[int] = []
        self.scores: list[int] = []
        self.is_pretest: list[bool] = []
        #: the estimate and its SE after each scored answer recorded (not those `resume` took)
        self.estimates: list[float] = []
        self.standard_errors: list[float] = []
        self._answered = 0

    # -- state -----------------------------------------------------------------------------

    @property
    def theta(self) -> float:
        """The current ability estimate."""
        return self._estimate.theta

    @property
    def se(self) -> float:
        """The current standard error."""
        return self._estimate.se

    @property
    def answered(self) -> int:
        """Number of scored answers so far."""
        return self._answered

    # -- answers ---------------------------------------------------------------------------

    def record(self, item_id: str, score: int | bool) -> None:
        """Fold in the answer to `item_id` (1/True correct, 0/False wrong, or a GRM category).

        Raises KeyError for an id unknown to this bank version.
        """
        i = self.pool.index.get(item_id)
        if i is None:
            raise KeyError(f"item {item_id!r} is not in bank version {self.pool.version!r}")
        self.record_index(i, int(score))

    def record_index(self, i: int, score: int) -> None:
        """Fold in the answer to the item at index `i` (the fast path of `record`)."""
        if not self._use(i, score):
            return  # pretest answers are collected for calibration, never scored
        pool = self.pool
        self.posterior.update(pool.likelihood(i, score, self.posterior.grid))
        self._estimate = self._point_estimate()
        self.estimates.append(self._estimate.theta)
        self.standard_errors.append(self._estimate.se)

    def _use(self, i: int, score: int) -> bool:
        """Everything an answer changes but the estimate: the items it closes, the competence
        rules' memory, the answer lists. True for a scored answer (the caller estimates it)."""
        for idx in self._closed_by(i):
            self._close(idx)
        return self._note(i, score)

    def _closed_by(self, i: int) -> list[int | NDArray[np.int64]]:
        """The item `i` and what the content rules close with it (its tube's, its skill's)."""
        pool, rules = self.pool, self.config.rules
        _, tube, skill, _ = pool.tags
        closed: list[int | NDArray[np.int64]] = [i]
        if rules.one_per_tube and tube[i] >= 0:
            closed.append(pool.tube_members[tube[i]])
        if rules.one_per_skill and skill[i] >= 0:
            closed.append(pool.skill_members[skill[i]])
        return closed

    def _note(self, i: int, score: int) -> bool:
        """The answer lists and the competence rules' memory; True for a scored answer."""
        competence, _, _, pretest_of = self.pool.tags
        comp = competence[i]
        self._last_competence = comp
        pretest = pretest_of[i]
        self.items.append(i)
        self.scores.append(score)
        self.is_pretest.append(pretest)
        if self.track_exposure and self.exposure is not None:
            self.exposure.counts[i] += 1
        if pretest:
            return False
        self._visited[comp + 1] = True
        self._answered += 1
        return True

    def resume(self, responses: Sequence[tuple[str, int | bool]], state: Resume) -> None:
        """Take the answers `responses` as answered, with the estimation state `state` a
        previous step left after them (see `Resume`), instead of estimating them again:
        afterwards the session is the one `record` of each would have made (but for the
        per-answer `estimates` history). A fresh session only; EAP only (ValueError)."""
        if self.items or self.config.estimator is not Estimator.EAP:
            raise ValueError("only a fresh session with the EAP estimator resumes")
        if state.answers != len(responses):
            raise ValueError("the state is of another number of answers")
        if state.weights.shape != self.posterior.grid.shape:
            raise ValueError("the state's posterior is on another grid")
        index = self.pool.index
        items: list[int] = []
        groups: list[NDArray[np.int64]] = []
        for item_id, score in responses:
            i = index.get(item_id)
            if i is None:
                raise KeyError(f"item {item_id!r} is not in bank version {self.pool.version!r}")
            items.append(i)
            groups.extend(g for g in self._closed_by(i)[1:] if not isinstance(g, int))
            self._note(i, int(score))
        if items:  # closed together: one assignment per array instead of one per item
            self._close(np.concatenate([np.array(items, dtype=np.int64), *groups]))
        estimate_ = Estimate(state.theta, state.se)
        weights = np.array(state.weights, dtype=np.float64)
        self.posterior.restore(weights, estimate_)
        self._estimate = estimate_

    def _close(self, idx: int | NDArray[np.int64]) -> None:
        self._scored_open[idx] = False
        self._pretest_open[idx] = False
        self._gain[idx] = 0.0
        self._penalty[idx] = _NEG_INF

    def _point_estimate(self) -> Estimate:
        cfg = self.config
        if cfg.estimator is Estimator.EAP:
            return self.posterior.eap()
        scored = [k for k, p in enumerate(self.is_pretest) if not p]
        idx = np.array([self.items[k] for k in scored], dtype=np.int64)
        if any(int(i) in self.pool.thresholds for i in idx):
            # graded items have no closed-form 4PL refinement: use the grid mode
            w = (
                self.posterior.weights
                if cfg.estimator is Estimator.MAP
                else np.exp(self.posterior.log_likelihood - self.posterior.log_likelihood.max())
            )
            return Estimate(float(self.posterior.grid[int(np.argmax(w))]), self.posterior.eap().se)
        y = np.array([self.scores[k] for k in scored], dtype=np.float64)
        p = self.pool
        return estimate(
            y,
            p.a[idx],
            p.b[idx],
            p.c[idx],
            p.d[idx],
            method=cfg.estimator,
            grid=cfg.grid,
            prior=cfg.prior,
        )

    # -- selection -------------------------------------------------------------------------

    def _competence_gate(self, cover: bool) -> BoolArray:
        rules = self.config.rules
        ok = self._in_profile.copy()
        if cover and rules.cover_competences:
            ok &= ~self._visited
            ok[0] = True
        if rules.no_consecutive_competence and self._last_competence >= 0:
            ok[self._last_competence + 1] = False
        return ok

    def _candidates(self, open_: BoolArray, new_round: bool = True) -> BoolArray | None:
        """Open items allowed by the competence rules, or None when none is.

        With `new_round`, a round of competences that has nothing left restarts. When only the
        last served competence has items left, the no-consecutive rule gives way.
        """
        if not self._gate_competences:
            return open_ if open_.any() else None
        comp = self.pool.competence + 1
        mask = open_ & self._competence_gate(cover=True)[comp]
        if mask.any():
            return mask
        if new_round and self.config.rules.cover_competences:
            # every competence of the round is served or exhausted: start a new round
            self._visited[:] = False
            mask = open_ & self._competence_gate(cover=True)[comp]
            if mask.any():
                return mask
        if new_round and self.config.rules.no_consecutive_competence and self._last_competence >= 0:
            # only the last competence has items left (a one-competence profile, or the others
            # exhausted): spacing is a preference, not a reason to end the test
            mask = open_ & self._in_profile[comp]
            if mask.any():
                return mask
        return None

    def _information(self) -> NDArray[np.float32]:
        """Information of every item under the configured selector (a read-only row of the
        pool's table, or a fresh array)."""
        table = self.pool.info_table
        if self.config.selector is Selector.POSTERIOR_INFO:
            w = np.bincount(self._pwi_bin, self.posterior.weights, self._pwi_rows.size)
            keep = w > 1e-3
            info: NDArray[np.float32] = w[keep].astype(np.float32) @ table[self._pwi_rows[keep]]
            return info
        row: NDArray[np.float32] = table[self.pool.info_row(self.theta)]
        return row

    def _scores(
        self, mask: BoolArray | None, ranked: bool
    ) -> tuple[NDArray[np.float32], int] | None:
        """Scores (information × exposure weight) and the index of the best eligible item,
        honouring the exposure cap where it leaves something eligible; None when no item is
        eligible at all. With `ranked`, ineligible items score −inf (for pickers that look
        beyond the best); otherwise only the best index is meaningful.

        `mask` None means "every open scored item" (no competence gate): the hot path, one
        multiplication and an argmax over float32 arrays, no allocation.
        """
        info = self._information()
        if mask is None:
            buf = self._buffer
            np.multiply(info, self._gain, out=buf)
            i = int(buf.argmax())  # the method skips np.argmax's dispatch
            if buf[i] > 0.0:
                if ranked:
                    buf += self._penalty
                return buf, i
            # nothing servable with positive information: the exact path below decides
            mask = self._scored_open
        if self._weights is not None:
            info = info * self._weights
        if self._under_cap is not None:
            capped = mask & self._under_cap
            # the cap is a target, not a reason to end a test: relax it when it empties the pool
            if capped.any():
                mask = capped
        scores = np.where(mask, info, _NEG_INF)
        i = int(scores.argmax())
        return (scores, i) if scores[i] > _NEG_INF else None

    def select_index(self) -> int | None:
        """Index of the next item to serve (scored or pretest), or None if nothing is eligible.

        Draws from `rng` only when the configuration asks for randomness.
        """
        cfg = self.config
        if (
            cfg.pretest_rate > 0
            and self._pretest_open.any()
            and self.rng.random() < cfg.pretest_rate
        ):
            pre = self._candidates(self._pretest_open, new_round=False)
            if pre is not None:
                choices = np.flatnonzero(pre)
                return int(choices[self.rng.integers(choices.size)])
        exp = cfg.exposure
        opening = exp is Exposure.PRICED and self.answered < cfg.opening_randomesque
        ranked = opening or exp not in _ARGMAX
        if self._gate_competences:
            mask = self._candidates(self._scored_open)
            if mask is None:
                return None
            found = self._scores(mask, ranked)
        else:
            found = self._scores(None, ranked)
        if found is None:
            return None
        scores, top = found
        if exp is Exposure.RANDOMESQUE or opening:
            return selection.randomesque(scores, cfg.randomesque_size, self.rng, top)
        if exp is Exposure.GEOMETRIC:
            return selection.geometric(scores, self.rng, cfg.geometric_p, best=top)
        if exp is Exposure.PROGRESSIVE_RESTRICTED:
            return selection.progressive(
                scores,
                self.answered,
                cfg.progressive_length or cfg.stopping.max_length,
                self.rng,
                cfg.progressive_power,
            )
        ledger = self.exposure
        if (
            exp is Exposure.SYMPSON_HETTER
            and ledger is not None
            and ledger.sympson_hetter_k is not None
        ):
            return self._sympson_hetter(scores, ledger.sympson_hetter_k)
        return top

    def _sympson_hetter(self, scores: NDArray[np.floating], k: NDArray[np.float64]) -> int | None:
        while True:
            i = selection.best(scores)
            if i is None or self.rng.random() < k[i]:
                return i
            # rejected items are out for the rest of this test, as in Sympson & Hetter (1985)
            scores[i] = -np.inf
            self._close(i)

    def step(self) -> Step:
        """Current estimate and the next item, or the reason to stop."""
        reason = self.config.stopping.reason(self.answered, self.se)
        nxt = None if reason else self.select_index()
        if reason is None and nxt is None:
            reason = StopReason.EXHAUSTED
        return Step(
            theta=self.theta,
            se=self.se,
            next_item=None if nxt is None else self.pool.ids[nxt],
            stop_reason=reason,
            answered=self.answered,
            pretest=nxt is not None and bool(self.pool.pretest[nxt]),
            posterior=self.posterior.weights if self.config.estimator is Estimator.EAP else None,
        )


def next_step(
    pool: ItemPool,
    responses: Sequence[tuple[str, int | bool]],
    config: EngineConfig | None = None,
    rng: np.random.Generator | None = None,
    *,
    locale: str | None = None,
    excluded: Iterable[str] = (),
    exposure: ExposureLedger | None = None,
    resume: Resume | None = None,
) -> Step:
    """The per-answer call: estimate and next item from the stored `(item_id, score)` answers.

    Pure: the same arguments (and `rng` state) give the same step. For a reproducible draw per
    request, seed `rng` with the assessment's seed and the number of answers, e.g.
    `np.random.default_rng([seed, len(responses)])`. Raises KeyError for an unknown item id.

    `resume`, the state a previous step left after the first `resume.answers` of `responses`
    (`Step.resume`), spares estimating those again: the step is the same, to the bit. It is
    ignored where it cannot apply (another estimator than EAP, more answers than given).
    """
    session = Session(pool, config, rng, locale=locale, excluded=excluded, exposure=exposure)
    start = 0
    if (
        resume is not None
        and session.config.estimator is Estimator.EAP
        and resume.answers <= len(responses)
    ):
        start = resume.answers
        session.resume(responses[:start], resume)
    for item_id, score in responses[start:]:
        session.record(item_id, score)
    return session.step()
