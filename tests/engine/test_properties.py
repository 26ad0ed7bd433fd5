"""Properties that must hold for any answers, checked with hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.estimation import Estimator, estimate
from engine.models import information, probability

items = st.lists(
    st.tuples(st.floats(0.3, 2.5), st.floats(-3, 3), st.floats(0, 0.35)),
    min_size=1,
    max_size=15,
)


@settings(max_examples=80, deadline=None)
@given(items=items, data=st.data())
def test_more_correct_answers_never_lower_the_estimate(
    items: list[tuple[float, float, float]], data: st.DataObject
) -> None:
    a, b, c = (np.array(x) for x in zip(*items, strict=True))
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(a), max_size=len(a))))
    wrong = np.flatnonzero(y == 0)
    if not wrong.size:
        return
    better = y.copy()
    better[data.draw(st.sampled_from(list(wrong)))] = 1
    for method in (Estimator.EAP, Estimator.MAP):
        before = estimate(y, a, b, c, method=method).theta
        after = estimate(better, a, b, c, method=method).theta
        assert after >= before - 1e-6


@settings(max_examples=60, deadline=None)
@given(items=items)
def test_estimates_stay_within_the_grid_and_the_fence(
    items: list[tuple[float, float, float]],
) -> None:
    a, b, c = (np.array(x) for x in zip(*items, strict=True))
    for y in (np.ones(len(a)), np.zeros(len(a))):
        assert -6 <= estimate(y, a, b, c).theta <= 6
        assert -4 <= estimate(y, a, b, c, method=Estimator.MLE).theta <= 4


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(0.2, 3),
    b=st.floats(-3, 3),
    c=st.floats(0, 0.45),
    t1=st.floats(-5, 5),
    t2=st.floats(-5, 5),
)
def test_probability_increases_with_ability(
    a: float, b: float, c: float, t1: float, t2: float
) -> None:
    lo, hi = sorted((t1, t2))
    assert probability(hi, a, b, c) >= probability(lo, a, b, c)
    assert information(lo, a, b, c) >= 0


@settings(max_examples=40, deadline=None)
@given(items=items, data=st.data())
def test_answer_order_does_not_change_the_eap(
    items: list[tuple[float, float, float]], data: st.DataObject
) -> None:
    a, b, c = (np.array(x) for x in zip(*items, strict=True))
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(a), max_size=len(a))))
    perm = np.array(data.draw(st.permutations(list(range(len(a))))))
    first = estimate(y, a, b, c)
    second = estimate(y[perm], a[perm], b[perm], c[perm])
    assert abs(first.theta - second.theta) < 1e-9
