"""Seeding the book of business for the dashboard and tenants-list tests: plans, subscriptions,
seats, invoices and participations written straight into the tables through the owner
connection (a superuser in tests: row-level security does not bind it), with known figures."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg


async def owner(owner_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(owner_url)


async def make_plan(
    conn: asyncpg.Connection,
    kind: str,
    interval: str,
    prices: dict[str, int],
    *,
    included_seats: int | None = None,
    pack_seats: int | None = None,
) -> tuple[UUID, str]:
    """A plan (its id and a unique code) with a standard price per currency."""
    plan_id, code = uuid4(), f"t-{kind.replace('_', '-')}-{uuid4().hex[:8]}"
    await conn.execute(
        """INSERT INTO plan (id, code, kind, names, interval, overage_policy, included_seats,
                             pack_seats, pack_validity_months)
           VALUES ($1, $2, $3, $4, $5, 'warn', $6, $7, $8)""",
        plan_id,
        code,
        kind,
        json.dumps({"en": code}),
        interval,
        included_seats,
        pack_seats,
        12 if pack_seats else None,
    )
    for currency, amount in prices.items():
        await conn.execute(
            "INSERT INTO plan_price (plan_id, currency, unit_amount) VALUES ($1, $2, $3)",
            plan_id,
            currency,
            amount,
        )
    return plan_id, code


async def subscribe(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    plan_id: UUID,
    status: str,
    quantity: int,
    currency: str,
    period_start: datetime,
    **extra: Any,
) -> UUID:
    """A subscription of the tenant, its period a month from `period_start`."""
    sub_id = uuid4()
    await conn.execute(
        """INSERT INTO subscription (tenant_id, id, plan_id, status, quantity, currency,
               current_period_start, current_period_end, status_changed_at, trial_end,
               past_due_since, gateway)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $9, $10, $11)""",
        tenant_id,
        sub_id,
        plan_id,
        status,
        quantity,
        currency,
        period_start,
        period_start + timedelta(days=30),
        extra.get("trial_end"),
        extra.get("past_due_since"),
        extra.get("gateway", "manual"),
    )
    return sub_id


async def seat_pack(
    conn: asyncpg.Connection, tenant_id: UUID, seats: int, starts: date, ends: date
) -> None:
    await conn.execute(
        """INSERT INTO seat_pack (tenant_id, id, seats, starts_on, ends_on, added_by)
           VALUES ($1, $2, $3, $4, $5, 'test')""",
        tenant_id,
        uuid4(),
        seats,
        starts,
        ends,
    )


async def seat_balance(
    conn: asyncpg.Connection, tenant_id: UUID, period_start: datetime, used: int
) -> None:
    await conn.execute(
        """INSERT INTO seat_balance (tenant_id, id, period_start, used, capacity,
                                     overage_policy, updated_at)
           VALUES ($1, $2, $3, $4, 0, 'warn', $3)""",
        tenant_id,
        uuid4(),
        period_start,
        used,
    )


async def invoice(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    currency: str,
    *,
    status: str,
    issued_at: datetime,
    due_on: date,
    total: int,
    amount_paid: int = 0,
    line_kind: str = "subscription",
) -> UUID:
    """An issued invoice (no tax) with one line of `line_kind` for its whole total."""
    invoice_id = uuid4()
    number = f"T-{uuid4().hex[:10]}"
    await conn.execute(
        """INSERT INTO invoice (tenant_id, id, status, issuer, year, number, currency,
               subtotal, tax_total, total, amount_paid, issued_at, due_on)
           VALUES ($1, $2, $3, 'test', $4, $5, $6, $7, 0, $7, $8, $9, $10)""",
        tenant_id,
        invoice_id,
        status,
        issued_at.year,
        number,
        currency,
        total,
        amount_paid,
        issued_at,
        due_on,
    )
    await conn.execute(
        """INSERT INTO invoice_line (tenant_id, id, invoice_id, position, kind, description,
               quantity, unit_amount, amount, tax_rate, tax_amount)
           VALUES ($1, $2, $3, 1, $4, 'test', 1, $5, $5, 0, 0)""",
        tenant_id,
        uuid4(),
        invoice_id,
        line_kind,
        total,
    )
    return invoice_id


async def participations(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    started: datetime,
    count: int,
    completed: datetime | None = None,
) -> None:
    """`count` participations started at `started` (completed at `completed`), of a campaign
    and learners that need not exist (the foreign keys are not checked while seeding)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for _ in range(count):
            await conn.execute(
                """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                       status, created_at, completed_at)
                   VALUES ($1, $2, $3, $4, 1, $5, $6, $7)""",
                tenant_id,
                uuid4(),
                uuid4(),
                uuid4(),
                "completed" if completed else "started",
                started,
                completed,
            )
