"""Resuming a test from the stored estimation state (ADR 0023) gives the step that replaying
every answer gives, to the bit: the same next item, estimate, standard error, stop and
posterior, at every answer, whatever the selector, exposure control, rules and pretest."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import ContentRules, EngineConfig, Exposure, Selector, Stopping
from engine.estimation import Estimator
from engine.pool import ItemPool
from engine.selection import ExposureLedger
from engine.session import Resume, Session, Step, next_step

CONFIGS = {
    "max-info": EngineConfig(stopping=Stopping(min_length=5, max_length=25, se_threshold=0.3)),
    "posterior-info, randomesque": EngineConfig(
        selector=Selector.POSTERIOR_INFO, exposure=Exposure.RANDOMESQUE
    ),
    "progressive, pretest": EngineConfig(
        exposure=Exposure.PROGRESSIVE_RESTRICTED, pretest_rate=0.2, max_exposure=0.3
    ),
    "priced, no rules": EngineConfig(
        exposure=Exposure.PRICED,
        max_exposure=0.2,
        rules=ContentRules(cover_competences=False, no_consecutive_competence=False),
    ),
}

EXCLUDED = ("i0", "i1")


def _same(resumed: Step, replayed: Step) -> None:
    assert resumed == replayed  # next item, theta, se, stop, answered, pretest: exactly
    assert resumed.posterior is not None
    assert replayed.posterior is not None
    assert np.array_equal(resumed.posterior, replayed.posterior)


def _ledger(pool: ItemPool, seed: int) -> ExposureLedger:
    ledger = ExposureLedger.empty(len(pool))
    ledger.counts[:] = np.random.default_rng(seed).integers(0, 40, len(pool))
    ledger.sessions = 100
    return ledger


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_resumed_step_is_the_replayed_step(tagged_pool: ItemPool, name: str) -> None:
    cfg = CONFIGS[name]
    ledger = _ledger(tagged_pool, 3)
    truth = np.random.default_rng(11)
    for seed in range(4):
        answers: list[tuple[str, int]] = []
        stored: Resume | None = None
        while True:
            replayed = next_step(
                tagged_pool,
                answers,
                cfg,
                np.random.default_rng([seed, len(answers)]),
                exposure=ledger,
                excluded=EXCLUDED,
            )
            resumed = next_step(
                tagged_pool,
                answers,
                cfg,
                np.random.default_rng([seed, len(answers)]),
                exposure=ledger,
                excluded=EXCLUDED,
                resume=stored,
            )
            _same(resumed, replayed)
            if resumed.next_item is None:
                break
            answers.append((resumed.next_item, int(truth.random() < 0.55)))
            # what the database keeps: the weights' bytes, and theta and se as float8
            state = resumed.resume(len(answers) - 1)
            assert state is not None
            stored = Resume(
                answers=state.answers,
                weights=Resume.weights_from_bytes(state.to_bytes()),
                theta=float(state.theta),
                se=float(state.se),
            )
        assert len(answers) >= 5


def test_a_resumed_session_has_the_replayed_sessions_state(tagged_pool: ItemPool) -> None:
    cfg = EngineConfig(pretest_rate=0.3)
    live = Session(tagged_pool, cfg, np.random.default_rng(5))
    answers: list[tuple[str, int]] = []
    for k in range(12):
        step = live.step()
        assert step.next_item is not None
        answers.append((step.next_item, int(k % 3 != 0)))
        live.record(step.next_item, k % 3 != 0)
    # the web app's session is rebuilt from the answers on each request: replayed, or resumed
    replayed = Session(tagged_pool, cfg, np.random.default_rng(5))
    for item_id, score in answers:
        replayed.record(item_id, score)
    state = Resume(len(answers), replayed.posterior.weights, replayed.theta, replayed.se)
    resumed = Session(tagged_pool, cfg, np.random.default_rng(5))
    resumed.resume(answers, state)
    assert resumed.answered == replayed.answered == live.answered
    assert resumed.items == replayed.items
    assert resumed.is_pretest == replayed.is_pretest
    assert resumed.theta == replayed.theta
    assert resumed.se == replayed.se
    assert np.array_equal(resumed.posterior.weights, replayed.posterior.weights)
    for name in ("_scored_open", "_pretest_open", "_visited", "_gain", "_penalty"):
        assert np.array_equal(getattr(resumed, name), getattr(replayed, name)), name
    assert resumed._last_competence == replayed._last_competence


def test_a_state_that_cannot_apply_is_refused_or_replayed(tagged_pool: ItemPool) -> None:
    cfg = EngineConfig()
    first = next_step(tagged_pool, [], cfg, np.random.default_rng(0))
    assert first.next_item is not None
    answers = [(first.next_item, 1)]
    state = next_step(tagged_pool, answers, cfg, np.random.default_rng(1)).resume(1)
    assert state is not None
    with pytest.raises(ValueError, match="another number of answers"):
        Session(tagged_pool, cfg).resume([], state)
    with pytest.raises(ValueError, match="EAP"):
        Session(tagged_pool, EngineConfig(estimator=Estimator.MAP)).resume(answers, state)
    # next_step replays what it cannot resume: MAP, or a state of more answers than given
    map_cfg = EngineConfig(estimator=Estimator.MAP)
    assert next_step(
        tagged_pool, answers, map_cfg, np.random.default_rng(2), resume=state
    ) == next_step(tagged_pool, answers, map_cfg, np.random.default_rng(2))
    assert next_step(tagged_pool, [], cfg, np.random.default_rng(2), resume=state) == next_step(
        tagged_pool, [], cfg, np.random.default_rng(2)
    )
