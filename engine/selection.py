"""Picking one item from ranked, eligible candidates, with exposure control.

These functions take a score per item (information, or −inf where ineligible) and return an
index. They never look at content: the session builds the eligibility mask.
"""

from __future__ import annotations

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
    i = int(np.argmax(scores))
    return i if np.isfinite(scores[i]) else None


def top_k(scores: NDArray[np.floating], k: int) -> IntArray:
    """Indices of the `k` highest finite scores, best first (fewer if fewer are finite)."""
    n = scores.size
    k = min(k, n)
    if k > 16:
        idx = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return np.asarray(idx[np.isfinite(scores[idx])], dtype=np.int64)
    # for the usual handful, k argmax passes beat a partition of the whole bank by ~10x
    work = np.array(scores, copy=True)
    out: list[int] = []
    for _ in range(k):
        i = int(np.argmax(work))
        if not np.isfinite(work[i]):
            break
        out.append(i)
        work[i] = -np.inf
    return np.array(out, dtype=np.int64)


def randomesque(scores: NDArray[np.floating], k: int, rng: np.random.Generator) -> int | None:
    """A uniform pick among the `k` best items (Kingsbury & Zara, 1989)."""
    idx = top_k(scores, k)
    return int(idx[rng.integers(idx.size)]) if idx.size else None


def geometric(
    scores: NDArray[np.floating], rng: np.random.Generator, p: float = 0.51, k: int = 5
) -> int | None:
    """Pix's pick: the j-th best of the top `k` with probability ∝ p (1 − p)^j."""
    idx = top_k(scores, k)
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
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    top = float(scores[finite].max())
    s = min(served / max(length, 1), 1.0) ** power
    noise = rng.random(scores.size, dtype=np.float32) * np.float32((1.0 - s) * top)
    mixed = np.where(finite, noise + np.float32(s) * np.where(finite, scores, 0), -np.inf)
    return int(np.argmax(mixed))
