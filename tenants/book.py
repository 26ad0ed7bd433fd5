"""The book of business: what staff read across every tenant (the back office's dashboard and
tenants list), through `dangerously_*` functions that take a staff context.

Tenant rows are invisible without a tenant (row-level security), and a sweep of one transaction
per tenant cannot draw a page of 10,000 tenants. `dangerously_open_book` opens a READ ONLY
transaction with no tenant, after checking in it that the acting user is a staff member whose
role reads tenants; the billing and campaigns halves of the book (`billing.book`,
`campaigns.book`) then read across tenants only through `SECURITY DEFINER` functions owned by
the owner role (migration `campaigns_2026_12_03t21_02_00_000000`, ADR 0024), each returning
what its page shows. No setting opens other tenants' rows: `jalon.book`, which a policy once
obeyed, opens nothing now. This module holds the organizations' own figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from core.database import fetch, global_transaction
from core.errors import Forbidden
from tenants.context import StaffContext
from tenants.permissions import StaffPermission, staff_roles_with

#: The organizations' kinds and statuses (the CHECKs of the `organization` table).
KINDS = ("company", "local_authority", "foreign_agency", "school", "other")
STATUSES = ("trial", "active", "suspended", "closed")


@asynccontextmanager
async def dangerously_open_book(staff: StaffContext) -> AsyncIterator[None]:
    """A READ ONLY transaction with no tenant, for the book's functions across tenants;
    `Forbidden` unless `staff` reads tenants, by their context and by their staff record in the
    database (a role changed or a staff member disabled since the session began is refused).
    Two statements before the caller's (BEGIN READ ONLY with the acting user, the check), and
    COMMIT after."""
    staff.require(StaffPermission.TENANTS_READ)
    async with global_transaction(staff.user_id, read_only=True):
        rows = await fetch(
            """SELECT 1 FROM staff_member
               WHERE user_id = $1 AND disabled_at IS NULL AND role = ANY($2::text[])""",
            staff.user_id,
            sorted(staff_roles_with(StaffPermission.TENANTS_READ)),
        )
        if not rows:
            raise Forbidden()
        yield


@dataclass(frozen=True)
class Tally:
    """How many organizations have one value of a facet (a status, a kind, a country)."""

    key: str
    count: int


@dataclass(frozen=True)
class TenantCounts:
    """The organizations counted by status, kind and country (every organization once in
    each); statuses and kinds in their fixed order with zeros, countries most first."""

    total: int
    by_status: list[Tally]
    by_kind: list[Tally]
    by_country: list[Tally]


async def dangerously_count_tenants(staff: StaffContext) -> TenantCounts:
    """Every organization counted by status, by kind and by country, in one statement."""
    staff.require(StaffPermission.TENANTS_READ)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            """SELECT 'status' AS facet, status AS key, count(*) AS n FROM organization
               GROUP BY status
               UNION ALL SELECT 'kind', kind, count(*) FROM organization GROUP BY kind
               UNION ALL SELECT 'country', country, count(*) FROM organization
               GROUP BY country"""
        )
    counted: dict[str, dict[str, int]] = {"status": {}, "kind": {}, "country": {}}
    for row in rows:
        counted[row["facet"]][row["key"].strip()] = row["n"]
    countries = sorted(counted["country"].items(), key=lambda item: (-item[1], item[0]))
    return TenantCounts(
        total=sum(counted["status"].values()),
        by_status=[Tally(key, counted["status"].get(key, 0)) for key in STATUSES],
        by_kind=[Tally(key, counted["kind"].get(key, 0)) for key in KINDS],
        by_country=[Tally(key, n) for key, n in countries],
    )
