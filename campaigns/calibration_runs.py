"""Calibration runs of the challenge bank, for content editors (issue 12).

A content editor launches a run (`dangerously_start_calibration`); the `calibrate_bank` job
reads every tenant's answers to the bank version in use, tenant by tenant (row-level
security admits no other way), and fits the challenges with `engine.calibration` (MML-EM,
2PL or 3PL) in a worker thread. Each participation is one row of the response matrix, held
in memory only: what is stored (`calibration_run`, `calibration_item`) is global and
anonymous, per challenge: answers, right answers, the fitted parameters beside the bank's
and the previous run's, infit and outfit, and whether the challenge drifted from the bank.

A run only reports. The bank's parameters are part of a bank version, which campaigns freeze
(ADR 0017's ledger and every stored result refer to it): new parameters reach participants
through a new bank version (the import), never by changing the one in use under running
campaigns. Challenges with fewer than `min_answers` answers get their counts but no
parameters.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from campaigns.content import current_bank
from core.database import execute, fetch, global_transaction
from core.errors import Invalid, NotFound
from core.ids import uuid_or_404
from core.jobs import enqueue, job
from engine import Bank
from engine.calibration import CalibrationModel, calibrate, drift_report, item_fit
from tenants.context import StaffContext
from tenants.organizations import dangerously_sweep_tenants
from tenants.permissions import StaffPermission
from tenants.staff import with_reason
from tenants.staff_trail import record_staff_action

MODELS = tuple(m.value for m in CalibrationModel)
DEFAULT_MIN_ANSWERS = 30
MIN_ANSWERS_RANGE = (1, 100_000)
STATUSES = ("queued", "running", "done", "failed")
#: Infit or outfit outside this range deserve a look (engine.calibration.ItemFit.misfits).
FIT_RANGE = (0.7, 1.3)


@dataclass(frozen=True)
class CalibrationRun:
    """One run: who asked, on which bank version, and what it found overall."""

    id: UUID
    status: str
    bank_version: str
    model: str
    min_answers: int
    requested_by_label: str
    reason: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tests: int | None
    answers: int | None
    items_calibrated: int | None
    log_likelihood: float | None
    iterations: int | None
    converged: bool | None
    #: each `{"message": …, "params": {…}}`, translated when shown
    warnings: tuple[dict[str, Any], ...]
    error: str

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True)
class CalibratedItem:
    """What a run found for one challenge (parameters only when it had enough answers)."""

    challenge_id: str
    answers: int
    correct: int
    calibrated: bool
    a: float | None
    b: float | None
    c: float | None
    bank_a: float
    bank_b: float
    bank_c: float
    previous_a: float | None
    previous_b: float | None
    previous_c: float | None
    infit: float | None
    outfit: float | None
    drift: bool

    @property
    def success_rate(self) -> float | None:
        return self.correct / self.answers if self.answers else None

    @property
    def b_change(self) -> float | None:
        """How far the difficulty moved since the previous run (else since the bank's)."""
        if self.b is None:
            return None
        return self.b - (self.previous_b if self.previous_b is not None else self.bank_b)

    @property
    def a_change(self) -> float | None:
        if self.a is None:
            return None
        return self.a - (self.previous_a if self.previous_a is not None else self.bank_a)

    @property
    def misfits(self) -> bool:
        low, high = FIT_RANGE
        return any(v is not None and not low <= v <= high for v in (self.infit, self.outfit))


def _run(row: Mapping[str, Any]) -> CalibrationRun:
    values = {k: v for k, v in row.items() if k != "requested_by"}
    values["warnings"] = tuple(json.loads(values["warnings"]))
    return CalibrationRun(**values)


def _item(row: Mapping[str, Any]) -> CalibratedItem:
    return CalibratedItem(**{k: v for k, v in row.items() if k != "run_id"})


def _min_answers(value: str | int | None) -> int:
    low, high = MIN_ANSWERS_RANGE
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not low <= number <= high:
        raise Invalid(
            "Enter a whole number between {low} and {high}.",
            field="min_answers",
            low=low,
            high=high,
        )
    return number


def _model(value: str | None) -> str:
    if value not in MODELS:
        raise Invalid("Choose a model.", field="model")
    return value


async def dangerously_start_calibration(
    staff: StaffContext,
    model: str | None = CalibrationModel.TWO_PL.value,
    min_answers: str | int | None = DEFAULT_MIN_ANSWERS,
    reason: str = "",
) -> UUID:
    """Queue a calibration of the bank in use on every tenant's answers (anonymous results
    only); the staff trail records `content.calibration.started`. The run's id."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    chosen = _model(model)
    threshold = _min_answers(min_answers)
    if reason.strip():
        staff = with_reason(staff, reason)
    bank = current_bank()
    run_id = uuid4()
    async with global_transaction(staff.user_id):
        await execute(
            """INSERT INTO calibration_run (id, bank_version, model, min_answers, requested_by,
                   requested_by_label, reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            run_id,
            bank.version,
            chosen,
            threshold,
            staff.user_id,
            staff.actor.label,
            staff.actor.reason,
        )
        await record_staff_action(
            staff,
            "content.calibration.started",
            "calibration_run",
            run_id,
            bank_version=bank.version,
            model=chosen,
            min_answers=threshold,
        )
        enqueue("calibrate_bank", str(run_id), job_id=f"calibration:{run_id}")
    return run_id


async def dangerously_calibration_runs(
    staff: StaffContext, limit: int = 20
) -> list[CalibrationRun]:
    """The latest runs, newest first."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            "SELECT * FROM calibration_run ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
        )
    return [_run(row) for row in rows]


async def dangerously_calibration_report(
    staff: StaffContext, run_id: UUID | str
) -> tuple[CalibrationRun, list[CalibratedItem]]:
    """A run and its challenges (calibrated ones first, by challenge id); `NotFound` for an
    unknown run."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch("SELECT * FROM calibration_run WHERE id = $1", uuid_or_404(run_id))
        if not rows:
            raise NotFound()
        items = await fetch(
            """SELECT * FROM calibration_item WHERE run_id = $1
               ORDER BY calibrated DESC, challenge_id""",
            rows[0]["id"],
        )
    return _run(rows[0]), [_item(row) for row in items]


async def dangerously_latest_calibration(
    staff: StaffContext, bank_version: str
) -> tuple[CalibrationRun | None, dict[str, CalibratedItem]]:
    """The latest finished run on `bank_version` and its challenges by id (for the
    statistics page); (None, {}) before any."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            """SELECT * FROM calibration_run
                WHERE status = 'done' AND bank_version = $1
                ORDER BY finished_at DESC, id DESC LIMIT 1""",
            bank_version,
        )
        if not rows:
            return None, {}
        items = await fetch("SELECT * FROM calibration_item WHERE run_id = $1", rows[0]["id"])
    return _run(rows[0]), {row["challenge_id"]: _item(row) for row in items}


# --- the job ----------------------------------------------------------------------------------

_TENANT_ANSWERS = """
SELECT a.participation_id, a.challenge_id, a.correct
FROM answer a
JOIN participation p ON p.tenant_id = $1 AND p.id = a.participation_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
WHERE a.tenant_id = $1 AND c.bank_version = $2
"""


@dataclass(frozen=True)
class _Fitted:
    """The engine's findings, computed off the event loop."""

    tests: int
    answers: int
    rows: list[tuple[Any, ...]]
    log_likelihood: float | None
    iterations: int | None
    converged: bool | None
    warnings: list[dict[str, Any]]


def _warning(message: str, **params: Any) -> dict[str, Any]:
    return {"message": message, "params": params}


def _fit(
    bank: Bank,
    responses: dict[UUID, dict[str, bool]],
    model: str,
    min_answers: int,
    previous: dict[str, tuple[float, float, float]],
) -> _Fitted:
    """Counts per challenge; parameters and fit for those with `min_answers` answers or more
    (when there are at least two); drift against the bank's parameters."""
    warnings: list[dict[str, Any]] = []
    answers: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    unknown: set[str] = set()
    for person in responses.values():
        for challenge_id, right in person.items():
            if challenge_id not in bank.challenge_by_id:
                unknown.add(challenge_id)
                continue
            answers[challenge_id] += 1
            correct[challenge_id] += int(right)
    if unknown:
        warnings.append(
            _warning("Answered challenges not in the bank, ignored: {count}.", count=len(unknown))
        )
    answered = sorted(answers)
    columns = [cid for cid in answered if answers[cid] >= min_answers]
    too_few = len(answered) - len(columns)
    if too_few:
        warnings.append(
            _warning(
                "Challenges with fewer than {min} answers, counted but not calibrated: {count}.",
                count=too_few,
                min=min_answers,
            )
        )
    fitted: dict[str, tuple[float, float, float, float, float, bool]] = {}
    log_likelihood: float | None = None
    iterations: int | None = None
    converged: bool | None = None
    if len(columns) >= 2:
        index = {cid: j for j, cid in enumerate(columns)}
        people = [p for p in responses.values() if any(cid in index for cid in p)]
        matrix = np.full((len(people), len(columns)), np.nan)
        for i, person in enumerate(people):
            for cid, right in person.items():
                if cid in index:
                    matrix[i, index[cid]] = 1.0 if right else 0.0
        result = calibrate(matrix, model, slope_prior_sd=0.5)
        fits = item_fit(matrix, result.a, result.b, result.c)
        drifts = drift_report(
            columns,
            [(bank.challenge_by_id[c].irt.a, bank.challenge_by_id[c].irt.b) for c in columns],
            [(it.a, it.b) for it in result.items],
        )
        for j, cid in enumerate(columns):
            it = result.items[j]
            fitted[cid] = (it.a, it.b, it.c, fits[j].infit, fits[j].outfit, drifts[j].flagged)
        log_likelihood, iterations, converged = (
            result.log_likelihood,
            result.iterations,
            result.converged,
        )
        if not result.converged:
            warnings.append(
                _warning(
                    "The estimation did not converge (iterations: {count}).",
                    count=result.iterations,
                )
            )
        misfits = sum(1 for f in fits if f.misfits)
        if misfits:
            warnings.append(
                _warning(
                    "Challenges that misfit (infit or outfit outside 0.7–1.3): {count}.",
                    count=misfits,
                )
            )
        drifted = sum(1 for d in drifts if d.flagged)
        if drifted:
            warnings.append(
                _warning(
                    "Challenges that drifted from the bank's parameters: {count}.", count=drifted
                )
            )
    else:
        warnings.append(
            _warning("Fewer than two challenges had enough answers: nothing was calibrated.")
        )
    rows: list[tuple[Any, ...]] = []
    for cid in answered:
        irt = bank.challenge_by_id[cid].irt
        found = fitted.get(cid)
        prev = previous.get(cid)
        rows.append(
            (
                cid,
                answers[cid],
                correct[cid],
                found is not None,
                *(_finite(v) for v in (found[:3] if found else (None, None, None))),
                irt.a,
                irt.b,
                irt.c,
                *(prev if prev else (None, None, None)),
                *(_finite(v) for v in (found[3:5] if found else (None, None))),
                bool(found[5]) if found else False,
            )
        )
    return _Fitted(
        tests=len(responses),
        answers=sum(answers.values()),
        rows=rows,
        log_likelihood=_finite(log_likelihood),
        iterations=iterations,
        converged=converged,
        warnings=warnings,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


async def dangerously_run_calibration(run_id: UUID) -> str:
    """Do run `run_id` (the job's work): read the answers, fit, store. A finished run is left
    as it is (the job may be delivered twice); a failure is stored with its message."""
    async with global_transaction():
        rows = await fetch(
            """UPDATE calibration_run SET status = 'running', started_at = now()
               WHERE id = $1 AND status IN ('queued', 'running')
               RETURNING bank_version, model, min_answers, created_at""",
            run_id,
        )
        if not rows:
            return "finished"
        run = rows[0]
        previous_rows = await fetch(
            """SELECT i.challenge_id, i.a, i.b, i.c FROM calibration_item i
               WHERE i.calibrated AND i.run_id = (
                   SELECT r.id FROM calibration_run r
                   WHERE r.status = 'done' AND r.id <> $1 AND r.created_at <= $2
                   ORDER BY r.finished_at DESC, r.id DESC LIMIT 1)""",
            run_id,
            run["created_at"],
        )
    previous = {r["challenge_id"]: (r["a"], r["b"], r["c"]) for r in previous_rows}
    try:
        bank = current_bank()
        if bank.version != run["bank_version"]:
            raise LookupError(
                f"The bank in use is now version {bank.version}, not {run['bank_version']}."
            )
        responses: dict[UUID, dict[str, bool]] = defaultdict(dict)

        async def collect(tenant_id: UUID) -> None:
            for row in await fetch(_TENANT_ANSWERS, tenant_id, bank.version):
                responses[row["participation_id"]][row["challenge_id"]] = row["correct"]

        await dangerously_sweep_tenants(collect)
        fitted = await asyncio.to_thread(
            _fit, bank, dict(responses), run["model"], run["min_answers"], previous
        )
    except Exception as error:  # stored for the editor, then the job ends
        async with global_transaction():
            await execute("DELETE FROM calibration_item WHERE run_id = $1", run_id)
            await execute(
                """UPDATE calibration_run SET status = 'failed', finished_at = now(),
                       error = $2 WHERE id = $1""",
                run_id,
                str(error)[:2000] or type(error).__name__,
            )
        return "failed"
    async with global_transaction():
        await execute("DELETE FROM calibration_item WHERE run_id = $1", run_id)
        if fitted.rows:
            columns = list(zip(*fitted.rows, strict=True))
            await execute(
                """INSERT INTO calibration_item (run_id, challenge_id, answers, correct,
                       calibrated, a, b, c, bank_a, bank_b, bank_c, previous_a, previous_b,
                       previous_c, infit, outfit, drift)
                   SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int[], $5::bool[],
                       $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[],
                       $11::float8[], $12::float8[], $13::float8[], $14::float8[],
                       $15::float8[], $16::float8[], $17::bool[])""",
                run_id,
                *[list(column) for column in columns],
            )
        await execute(
            """UPDATE calibration_run SET status = 'done', finished_at = now(), tests = $2,
                   answers = $3, items_calibrated = $4, log_likelihood = $5, iterations = $6,
                   converged = $7, warnings = $8::jsonb
               WHERE id = $1""",
            run_id,
            fitted.tests,
            fitted.answers,
            sum(1 for row in fitted.rows if row[3]),
            fitted.log_likelihood,
            fitted.iterations,
            fitted.converged,
            json.dumps(fitted.warnings),
        )
    return "done"


@job
async def calibrate_bank(ctx: dict[str, Any], run_id: str) -> str:
    """Run a queued calibration (idempotent: a finished run is not run again)."""
    return await dangerously_run_calibration(UUID(run_id))


# --- per-challenge statistics -------------------------------------------------------------


@dataclass(frozen=True)
class ItemStatistics:
    """One challenge of the bank in use: how often it is served across tenants (the exposure
    ledger), how often it is answered right, and what the latest run fitted (else None)."""

    challenge_id: str
    competence: str
    status: str
    served: int | None
    exposure_rate: float | None
    answers: int | None
    success_rate: float | None
    a: float | None
    b: float | None
    c: float | None
    bank_a: float
    bank_b: float
    a_change: float | None
    b_change: float | None
    infit: float | None
    outfit: float | None
    drift: bool
    misfits: bool


@dataclass(frozen=True)
class BankStatistics:
    """The statistics page: the bank version, its recent tests, the run the figures come
    from, and one row per challenge in the order asked for."""

    bank_version: str
    tests: int | None
    run: CalibrationRun | None
    items: list[ItemStatistics]


#: What the statistics can be sorted by (each an `ItemStatistics` field).
SORTS = (
    "challenge_id",
    "competence",
    "status",
    "exposure_rate",
    "answers",
    "success_rate",
    "a",
    "b",
    "b_change",
    "infit",
    "outfit",
)


def _check_sort(sort: str, order: str) -> tuple[str, bool]:
    if sort not in SORTS:
        raise Invalid("Choose a column to sort by.", field="sort")
    if order not in ("asc", "desc"):
        raise Invalid("Choose an order.", field="order")
    return sort, order == "desc"


async def dangerously_bank_statistics(
    staff: StaffContext, sort: str = "challenge_id", order: str = "asc"
) -> BankStatistics:
    """Per challenge of the bank in use: exposure rate (served / recent tests, from the
    service-wide ledger), and answers, success rate, parameters, their change and fit from the
    latest finished calibration run on this version. Global and anonymous: no tenant, no
    person. Rows without a value sort last whatever the order."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    key, descending = _check_sort(sort, order)
    bank = current_bank()
    async with global_transaction(staff.user_id):
        ledger = await fetch(
            "SELECT tests FROM bank_exposure WHERE bank_version = $1", bank.version
        )
        served_rows = await fetch(
            "SELECT challenge_id, served FROM challenge_exposure WHERE bank_version = $1",
            bank.version,
        )
    run, calibrated = await dangerously_latest_calibration(staff, bank.version)
    tests = ledger[0]["tests"] if ledger else None
    served = {row["challenge_id"]: row["served"] for row in served_rows}
    items = []
    for challenge in bank.challenges:
        found = calibrated.get(challenge.id)
        count = served.get(challenge.id, 0) if tests else None
        items.append(
            ItemStatistics(
                challenge_id=challenge.id,
                competence=bank.skills[challenge.skill].competence,
                status=challenge.status,
                served=count,
                exposure_rate=count / tests if tests and count is not None else None,
                answers=found.answers if found else None,
                success_rate=found.success_rate if found else None,
                a=found.a if found else None,
                b=found.b if found else None,
                c=found.c if found else None,
                bank_a=challenge.irt.a,
                bank_b=challenge.irt.b,
                a_change=found.a_change if found else None,
                b_change=found.b_change if found else None,
                infit=found.infit if found else None,
                outfit=found.outfit if found else None,
                drift=found.drift if found else False,
                misfits=found.misfits if found else False,
            )
        )
    present = [i for i in items if getattr(i, key) is not None]
    missing = [i for i in items if getattr(i, key) is None]
    present.sort(key=lambda i: getattr(i, key), reverse=descending)
    return BankStatistics(bank.version, tests, run, present + missing)
