from __future__ import annotations

import numpy as np

from engine.config import ContentRules, EngineConfig, Stopping, StopReason
from engine.pool import ItemPool
from engine.session import Session


def test_fixed_length_stops_exactly_at_the_length() -> None:
    rule = Stopping.fixed(12)
    assert rule.reason(11, 0.01) is None
    assert rule.reason(12, 0.9) is StopReason.MAX_LENGTH


def test_se_threshold_stops_once_precise_enough_after_the_minimum() -> None:
    rule = Stopping(min_length=5, max_length=30, se_threshold=0.3)
    assert rule.reason(4, 0.2) is None
    assert rule.reason(5, 0.31) is None
    assert rule.reason(5, 0.29) is StopReason.SE_REACHED
    assert rule.reason(30, 0.5) is StopReason.MAX_LENGTH


def test_a_test_stops_when_the_bank_is_exhausted() -> None:
    pool = ItemPool.from_records([{"id": f"x{i}", "a": 1.0, "b": 0.0} for i in range(3)])
    s = Session(pool, EngineConfig(rules=ContentRules.off(), stopping=Stopping.fixed(10)))
    for _ in range(3):
        step = s.step()
        assert step.next_item is not None
        s.record(step.next_item, 1)
    final = s.step()
    assert final.next_item is None
    assert final.stop_reason is StopReason.EXHAUSTED


def test_se_stopping_ends_tests_at_varying_lengths(pool_2pl: ItemPool) -> None:
    from engine.simulation import simulate

    cfg = EngineConfig(
        rules=ContentRules.off(), stopping=Stopping(min_length=3, max_length=40, se_threshold=0.35)
    )
    res = simulate(pool_2pl, np.random.default_rng(0).normal(size=60), cfg, seed=1)
    lengths = {len(e) for e in res.estimates}
    assert len(lengths) > 1
    assert all(s[-1] < 0.35 or len(s) == 40 for s in res.standard_errors)
