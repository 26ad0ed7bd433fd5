"""The item pool: a bank compiled into flat arrays for the hot path.

A pool is built once per bank version and shared read-only by every session of the process.
Everything that does not depend on a participant is precomputed here: item information on a
fine ability grid (so selection is a row lookup plus a masked argmax), membership lists for
tubes and skills (so a content rule excludes a whole tube in one fancy-indexed write), and
per-locale availability masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from engine import models

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: The ability grid of the precomputed information table. Outside it the most informative item
#: barely changes, so abilities are clipped to it for selection (not for estimation).
INFO_LOW = -4.0
INFO_HIGH = 4.0
INFO_STEP = 0.05


class StartingMasks(NamedTuple):
    """A session's masks before it excludes anything (`ItemPool.starting_masks`)."""

    #: by competence index + 1 (0: no competence), the competences of the profile
    in_profile: BoolArray
    #: scored items a session may serve, and pretest items it may seed
    scored_open: BoolArray
    pretest_open: BoolArray


@dataclass(frozen=True, eq=False)
class ItemPool:
    """Item parameters and content tags as arrays; index i describes item `ids[i]`.

    Tag arrays hold -1 where an item has no competence, tube or skill: rules ignore it there.
    `scored` marks items that selection may pick for scoring (validated), `pretest` items that
    may be seeded unscored. `thresholds` holds graded-response items (index → thresholds); their
    `b` is the mean threshold and `c`, `d` are 0 and 1.
    """

    ids: tuple[str, ...]
    a: FloatArray
    b: FloatArray
    c: FloatArray
    d: FloatArray
    competence: IntArray
    tube: IntArray
    skill: IntArray
    scored: BoolArray
    pretest: BoolArray
    competence_codes: tuple[str, ...] = ()
    tube_codes: tuple[str, ...] = ()
    skill_codes: tuple[str, ...] = ()
    locales: Mapping[str, BoolArray] = field(default_factory=dict)
    thresholds: Mapping[int, FloatArray] = field(default_factory=dict)
    version: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def index(self) -> dict[str, int]:
        """Item id → position in the arrays."""
        return {item_id: i for i, item_id in enumerate(self.ids)}

    @cached_property
    def _starting_masks(self) -> dict[tuple[str | None, tuple[str, ...] | None], StartingMasks]:
        return {}

    def starting_masks(
        self, locale: str | None, competences: tuple[str, ...] | None
    ) -> StartingMasks:
        """What a session of `locale`'s items (None: every item) restricted to `competences`
        (None: all) may serve before anything is excluded, computed once per pool and kept
        (a few dozen combinations: a campaign's profile and language). Read-only: a session
        copies the open masks before closing items in them."""
        key = (locale, competences)
        found = self._starting_masks.get(key)
        if found is None:
            in_profile = np.ones(len(self.competence_codes) + 1, dtype=np.bool_)
            open_ = self.locale_mask(locale)
            if competences is not None:
                wanted = set(competences)
                # index 0 stands for "no competence": untagged items stay open
                in_profile[1:] = [code in wanted for code in self.competence_codes]
                open_ &= in_profile[self.competence + 1]
            found = StartingMasks(in_profile, open_ & self.scored, open_ & self.pretest)
            for mask in found:
                mask.setflags(write=False)
            self._starting_masks[key] = found
        return found

    @cached_property
    def parameters(self) -> list[tuple[float, float, float, float]]:
        """(a, b, c, d) of each item as Python floats, for per-answer scalar arithmetic."""
        return list(
            zip(self.a.tolist(), self.b.tolist(), self.c.tolist(), self.d.tolist(), strict=True)
        )

    @cached_property
    def info_grid(self) -> FloatArray:
        """Abilities at which `info_table` is tabulated."""
        n = round((INFO_HIGH - INFO_LOW) / INFO_STEP) + 1
        return np.linspace(INFO_LOW, INFO_HIGH, n)

    @cached_property
    def info_table(self) -> NDArray[np.float32]:
        """Item information, shape (grid, items), float32, each row contiguous for fast argmax."""
        grid = self.info_grid
        table = models.information(grid, self.a, self.b, self.c, self.d)
        for i, thr in self.thresholds.items():
            table[i] = models.grm_information(grid, float(self.a[i]), thr)
        return np.ascontiguousarray(table.T, dtype=np.float32)

    @cached_property
    def tags(self) -> tuple[list[int], list[int], list[int], list[bool]]:
        """Each item's competence, tube and skill (-1 for none) and whether it is pretest, as
        Python lists: what a session reads per answer, without indexing numpy arrays."""
        return (
            self.competence.tolist(),
            self.tube.tolist(),
            self.skill.tolist(),
            self.pretest.tolist(),
        )

    @cached_property
    def tube_members(self) -> tuple[IntArray, ...]:
        """Item indices of each tube."""
        return _members(self.tube, len(self.tube_codes))

    @cached_property
    def skill_members(self) -> tuple[IntArray, ...]:
        """Item indices of each skill."""
        return _members(self.skill, len(self.skill_codes))

    def info_row(self, theta: float) -> int:
        """Row of `info_table` nearest to `theta` (clipped to the table's range)."""
        k = round((theta - INFO_LOW) / INFO_STEP)
        return min(max(k, 0), self.info_grid.size - 1)

    def likelihood(self, i: int, score: int, grid: FloatArray) -> FloatArray:
        """Likelihood on `grid` of answering item `i` with `score` (0/1, or a GRM category)."""
        thr = self.thresholds.get(i)
        if thr is not None:
            probs = models.grm_probability(grid, float(self.a[i]), thr)
            return np.asarray(probs[min(max(score, 0), probs.shape[0] - 1)], dtype=np.float64)
        a, b, c, d = self.parameters[i]
        # in place on one fresh array: this runs on every answer
        p = np.subtract(grid, b)
        if c == 0.0 and d == 1.0:
            # 2PL: P = 1 / (1 + e^(−a(θ−b))) and 1 − P = 1 / (1 + e^(a(θ−b)))
            p *= -a if score > 0 else a
            np.exp(p, out=p)
            p += 1.0
            return np.reciprocal(p, out=p)
        p *= -a
        np.exp(p, out=p)
        p += 1.0
        np.divide(d - c, p, out=p)
        if c:
            p += c
        if score <= 0:
            np.subtract(1.0, p, out=p)
        return p

    def answer_probability(self, i: int, theta: float) -> FloatArray:
        """Category probabilities of item `i` at `theta` (two values for a dichotomous item)."""
        thr = self.thresholds.get(i)
        if thr is not None:
            return models.grm_probability(np.array([theta]), float(self.a[i]), thr)[:, 0]
        a, b, c, d = self.parameters[i]
        z = -a * (float(theta) - b)
        p = c + (d - c) / (1.0 + math.exp(z)) if z < 700.0 else c
        return np.array([1.0 - p, p])

    def locale_mask(self, locale: str | None) -> BoolArray:
        """Items available in `locale` (every item when `locale` is None or untagged)."""
        if locale is None or not self.locales:
            return np.ones(len(self.ids), dtype=np.bool_)
        mask = self.locales.get(locale)
        return mask.copy() if mask is not None else np.zeros(len(self.ids), dtype=np.bool_)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], version: str = "") -> ItemPool:
        """Build a pool from plain records `{"id", "a", "b", "c"?, "d"?, "competence"?, …}`.

        Optional keys: `tube`, `skill`, `status` (default validated), `locales` (list),
        `thresholds` (a graded-response item, in place of `b`). This is the simulation bank
        format of `jalon engine simulate`.
        """
        n = len(records)
        comp_codes: dict[str, int] = {}
        tube_codes: dict[str, int] = {}
        skill_codes: dict[str, int] = {}
        locale_sets: dict[str, BoolArray] = {}

        def code(table: dict[str, int], value: object) -> int:
            if value is None:
                return -1
            return table.setdefault(str(value), len(table))

        a = np.empty(n)
        b = np.empty(n)
        c = np.zeros(n)
        d = np.ones(n)
        comp = np.empty(n, dtype=np.int64)
        tube = np.empty(n, dtype=np.int64)
        skill = np.empty(n, dtype=np.int64)
        status: list[str] = []
        thresholds: dict[int, FloatArray] = {}
        for i, rec in enumerate(records):
            a[i] = float(rec["a"])
            if rec.get("thresholds") is not None:
                thresholds[i] = np.asarray(rec["thresholds"], dtype=np.float64)
                b[i] = float(np.mean(thresholds[i]))
            else:
                b[i] = float(rec["b"])
                c[i] = float(rec.get("c") or 0.0)
                d[i] = float(rec["d"]) if rec.get("d") is not None else 1.0
            comp[i] = code(comp_codes, rec.get("competence"))
            tube[i] = code(tube_codes, rec.get("tube"))
            skill[i] = code(skill_codes, rec.get("skill"))
            status.append(str(rec.get("status", "validated")))
            for loc in rec.get("locales") or ():
                locale_sets.setdefault(str(loc), np.zeros(n, dtype=np.bool_))[i] = True
        st = np.array(status)
        return cls(
            ids=tuple(str(r["id"]) for r in records),
            a=a,
            b=b,
            c=c,
            d=d,
            competence=comp,
            tube=tube,
            skill=skill,
            scored=st == "validated",
            pretest=st == "pretest",
            competence_codes=tuple(comp_codes),
            tube_codes=tuple(tube_codes),
            skill_codes=tuple(skill_codes),
            locales=locale_sets,
            thresholds=thresholds,
            version=version,
        )


def _members(tags: IntArray, count: int) -> tuple[IntArray, ...]:
    order = np.argsort(tags, kind="stable")
    bounds = np.searchsorted(tags[order], np.arange(count + 1))
    return tuple(order[bounds[k] : bounds[k + 1]] for k in range(count))
