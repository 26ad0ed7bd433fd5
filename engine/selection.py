"""Picking one item from ranked, eligible candidates, with exposure control.

These functions take a score per item (information, or −inf where ineligible) and return an
index. They never look at content: the session builds the eligibility mask. Scores may be
float32 or float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass
class ExposureLedger:
    """How often each item has been served, over how many sessions; optionally Sympson–Hetter
    control parameters. The web app rebuilds it from stored counts; simulations update it."""

    counts: IntArray
    sessions: int = 0
    sympson_hetter_k: FloatArray | None = field(default=None)

    @classmethod
    def empty(cls, n_items: int) -> ExposureLedger:
        """A ledger with no session yet."""
        return cls(counts=np.zeros(n_items, dtype=np.int64))

    def rates(self) -> FloatArray:
        """Exposure rate of each item (served / sessions)."""
        return np.asarray(self.counts / max(self.sessions, 1), dtype=np.float64)

    def under_cap(self, max_rate: float) -> NDArray[np.bool_]:
        """Items whose exposure is still below `max_rate` counting the session in progress."""
        return np.asarray(self.counts < max_rate * max(self.sessions, 1))


def best(scores: NDArray[np.floating]) -> int | None:
    """Index of the highest finite score, or None when every score is −inf."""
    i = int(scores.argmax())  # the method skips np.argmax's dispatch: ~1 µs per call
    return i if math.isfinite(scores[i]) else None


def top_k(scores: NDArray[np.floating], k: int, best: int | None = None) -> IntArray:
    """Indices of the `k` highest finite scores, best first (fewer if fewer are finite); ties
    go to the lower index. `best`, if known, is the index of the highest score."""
    n = scores.size
    k = min(k, n)
    if k > 16:
        idx = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
        return _best_first(scores, idx)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    # for the usual handful, k argmax passes beat a partition of the whole bank
    i = int(scores.argmax()) if best is None else best
    if not math.isfinite(scores[i]):
        return np.empty(0, dtype=np.int64)
    out = [i]
    if k > 1:
        work = scores.copy()
        work[i] = -np.inf
        for _ in range(k - 1):
            i = int(work.argmax())
            if not math.isfinite(work[i]):
                break
            out.append(i)
            work[i] = -np.inf
    return np.array(out, dtype=np.int64)


def _best_first(scores: NDArray[np.floating], idx: IntArray) -> IntArray:
    """`idx` ordered by decreasing score, ties by increasing index; finite scores only."""
    idx = np.sort(idx)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return np.asarray(idx[np.isfinite(scores[idx])], dtype=np.int64)


def randomesque(
    scores: NDArray[np.floating], k: int, rng: np.random.Generator, best: int | None = None
) -> int | None:
    """A uniform pick among the `k` best items (Kingsbury & Zara, 1989); `best` as in top_k."""
    idx = top_k(scores, k, best)
    return int(idx[rng.integers(idx.size)]) if idx.size else None


def geometric(
    scores: NDArray[np.floating],
    rng: np.random.Generator,
    p: float = 0.51,
    k: int = 5,
    best: int | None = None,
) -> int | None:
    """Pix's pick: the j-th best of the top `k` with probability ∝ p (1 − p)^j."""
    idx = top_k(scores, k, best)
    if not idx.size:
        return None
    w = p * (1.0 - p) ** np.arange(idx.size)
    return int(idx[rng.choice(idx.size, p=w / w.sum())])


def progressive(
    scores: NDArray[np.floating],
    served: int,
    length: int,
    rng: np.random.Generator,
    power: float = 1.0,
) -> int | None:
    """Revuelta & Ponsoda's progressive method: (1 − s) R + s I with s = (served / length)^power
    and R uniform on [0, max I]; early items are nearly random, late ones nearly max-info."""
    i = int(scores.argmax())
    top = float(scores[i])
    if not math.isfinite(top):
        return None
    s = min(served / max(length, 1), 1.0) ** power
    # one uniform per item (eligible or not) keeps the draw count independent of eligibility
    mixed = rng.random(scores.size, dtype=np.float32)
    mixed *= np.float32((1.0 - s) * top)
    if s > 0.0:
        mixed += np.float32(s) * scores  # −inf stays −inf
    else:
        mixed[~np.isfinite(scores)] = -np.inf
    return int(mixed.argmax())


def exposure_weights(
    ledger: ExposureLedger,
    max_rate: float,
    *,
    slope: float,
    onset: float,
    min_rate: float,
    bonus: float,
) -> NDArray[np.float32]:
    """Per-item multipliers of information for priced exposure control: (1 + μ) / (1 + λ).

    λ = `slope` · max(0, rate / `max_rate` − `onset`) is a price that grows as an item nears the
    cap, so that it gives way to a nearly as informative item rather than being served to
    whoever comes first (a smooth, ledger-derived Lagrange multiplier of the exposure
    constraint); μ = `bonus` · max(0, 1 − rate / `min_rate`) promotes items that are almost
    never served. Rates are counts / sessions, so the weights need no state beyond the ledger.
    """
    sessions = float(max(ledger.sessions, 1))
    counts = ledger.counts.astype(np.float32)
    # λ in count space: slope · (counts / (max_rate · sessions) − onset), in place, float32
    w = counts * np.float32(slope / (max_rate * sessions))
    w -= np.float32(slope * onset)
    np.maximum(w, np.float32(0.0), out=w)
    w += np.float32(1.0)
    np.divide(np.float32(1.0), w, out=w)
    if min_rate > 0.0 and bonus > 0.0:
        mu = counts
        mu *= np.float32(-bonus / (min_rate * sessions))
        mu += np.float32(bonus)
        np.maximum(mu, np.float32(0.0), out=mu)
        mu += np.float32(1.0)
        w *= mu
    return w
