"""The exposure ledger: how often each challenge of a bank version is served, across every
tenant (ADR 0017), so that a campaign's maximum exposure rate holds for the whole service.

`refresh_exposure` (hourly) counts, tenant by tenant, the tests started in the last
`WINDOW_DAYS` and the scored answers they hold per challenge, and replaces the global,
anonymous `bank_exposure` / `challenge_exposure` rows. `exposure_ledgers()` reads them at
most once per `CACHE_SECONDS` per process (outside any transaction, like the withdrawn
challenges: the answer path pays no query), and `ledger_for(bank, ledgers)` aligns one with
the bank's item pool for the engine. Below `MIN_TESTS` recent tests there is no ledger: rates
over a handful of tests mean nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np

from core.database import execute, fetch, global_transaction
from core.jobs import every
from engine import Bank
from engine.selection import ExposureLedger
from tenants.organizations import dangerously_sweep_tenants

#: Tests older than this no longer count.
WINDOW_DAYS = 90
#: Fewer recent tests than this: no ledger (exposure control by randomisation only).
MIN_TESTS = 100
CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class StoredLedger:
    """A bank version's recent tests and the tests each challenge was answered in."""

    tests: int
    served: dict[str, int]


_cache: tuple[float, dict[str, StoredLedger]] | None = None
#: by bank version: the stored ledger it was built from, and the engine's ledger
_aligned: dict[str, tuple[StoredLedger | None, ExposureLedger | None]] = {}


def forget() -> None:
    """Drop this process's copy: the next read asks the database."""
    global _cache
    _cache = None
    _aligned.clear()


async def exposure_ledgers() -> dict[str, StoredLedger]:
    """Every bank version's stored ledger, by version; cached `CACHE_SECONDS` per process.
    Call it outside a transaction (it opens its own when the copy is stale)."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    async with global_transaction():
        rows = await fetch(
            """SELECT b.bank_version, b.tests, c.challenge_id, c.served
               FROM bank_exposure b
               LEFT JOIN challenge_exposure c ON c.bank_version = b.bank_version"""
        )
    tests: dict[str, int] = {}
    served: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        tests[row["bank_version"]] = row["tests"]
        if row["challenge_id"] is not None:
            served[row["bank_version"]][row["challenge_id"]] = row["served"]
    ledgers = {version: StoredLedger(n, dict(served[version])) for version, n in tests.items()}
    _cache = (now, ledgers)
    _aligned.clear()
    return ledgers


def ledger_for(bank: Bank, ledgers: dict[str, StoredLedger]) -> ExposureLedger | None:
    """The engine's ledger for `bank` (its counts in the pool's order), or None without
    enough recent tests. Built once per bank version and stored ledger."""
    stored = ledgers.get(bank.version)
    cached = _aligned.get(bank.version)
    if cached is not None and cached[0] is stored:
        return cached[1]
    ledger = None
    if stored is not None and stored.tests >= MIN_TESTS:
        counts = np.array([stored.served.get(i, 0) for i in bank.pool.ids], dtype=np.int64)
        ledger = ExposureLedger(counts=counts, sessions=stored.tests)
    _aligned[bank.version] = (stored, ledger)
    return ledger


_TENANT_TESTS = """
SELECT c.bank_version, count(*) AS tests
FROM assessment s
JOIN participation p ON p.tenant_id = $1 AND p.id = s.participation_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
WHERE s.tenant_id = $1 AND s.created_at > now() - make_interval(days => $2)
GROUP BY c.bank_version
"""

_TENANT_SERVED = """
SELECT c.bank_version, a.challenge_id, count(*) AS served
FROM answer a
JOIN participation p ON p.tenant_id = $1 AND p.id = a.participation_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
JOIN assessment s ON s.tenant_id = $1 AND s.participation_id = p.id
WHERE a.tenant_id = $1 AND NOT a.pretest AND s.created_at > now() - make_interval(days => $2)
GROUP BY c.bank_version, a.challenge_id
"""


@every(minutes=60)
async def refresh_exposure(ctx: dict[str, Any]) -> int:
    """Recount the ledger from every tenant's recent tests (tenant by tenant, as row-level
    security wants) and replace the global rows in one transaction. How many bank versions."""
    tests: dict[str, int] = defaultdict(int)
    served: dict[tuple[str, str], int] = defaultdict(int)

    async def count(tenant_id: UUID) -> None:
        for row in await fetch(_TENANT_TESTS, tenant_id, WINDOW_DAYS):
            tests[row["bank_version"]] += row["tests"]
        for row in await fetch(_TENANT_SERVED, tenant_id, WINDOW_DAYS):
            served[(row["bank_version"], row["challenge_id"])] += row["served"]

    await dangerously_sweep_tenants(count)
    async with global_transaction():
        await execute("DELETE FROM bank_exposure")  # the challenges' rows go with it
        await execute(
            """INSERT INTO bank_exposure (bank_version, tests)
               SELECT * FROM unnest($1::text[], $2::bigint[])""",
            list(tests),
            list(tests.values()),
        )
        keys = [key for key in served if key[0] in tests]
        await execute(
            """INSERT INTO challenge_exposure (bank_version, challenge_id, served)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])""",
            [version for version, _ in keys],
            [challenge for _, challenge in keys],
            [served[key] for key in keys],
        )
    forget()
    return len(tests)
