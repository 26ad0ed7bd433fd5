"""The audit log: tenant-owned, append-only (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

from core.database import contains_pattern, execute, fetch, tenant_transaction
from core.errors import Invalid
from core.keyset import decode_cursor, encode_cursor
from core.validation import clean_day, clean_text
from tenants.context import TenantContext
from tenants.permissions import Permission
from tenants.staff_trail import record_staff_action

PAGE_SIZE = 50
#: The most events one page holds (the API's `limit`).
PAGE_MAX = 100


async def record(
    ctx: TenantContext,
    action: str,
    target_type: str = "",
    target_id: UUID | str = "",
    **details: Any,
) -> None:
    """Append one event for the current transaction's change (call inside it). A staff
    member's event (the service provider acting in the tenant) also lands in the staff trail,
    with their reason, in the same transaction."""
    actor = ctx.actor
    if actor.kind == "staff":
        details = {**details, "reason": actor.reason} if actor.reason else details
        await record_staff_action(
            actor, action, target_type, target_id, tenant_id=ctx.tenant_id, **details
        )
    await execute(
        """
        INSERT INTO audit_event (tenant_id, id, occurred_at, actor_user_id, actor_kind,
            actor_label, action, target_type, target_id, ip, user_agent, details)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11, $12::jsonb)
        """,
        ctx.tenant_id,
        uuid4(),
        datetime.now(UTC),
        actor.user_id,
        actor.kind,
        actor.label,
        action,
        target_type,
        str(target_id),
        actor.ip,
        actor.user_agent[:500],
        json.dumps(details, default=str),
    )


@dataclass(frozen=True)
class AuditFilter:
    """What the log is narrowed to. Days are whole days in the organization's time zone,
    both included: `since` from its midnight, `until` to its end."""

    action: str | None = None
    actor: str | None = None
    since: date | None = None
    until: date | None = None


def clean_filter(
    action: str | None, actor: str | None, since: str | None, until: str | None
) -> AuditFilter:
    """The filters as typed in the console's form or the API's query: an action name, part
    of an actor's email or token name, and days as YYYY-MM-DD. `Invalid` naming the field for
    a text too long, a day in another form, or an end before the start."""
    cleaned = AuditFilter(
        action=clean_text(action or "", "action", max_length=100, required=False) or None,
        actor=clean_text(actor or "", "actor", max_length=200, required=False) or None,
        since=clean_day(since, "since"),
        until=clean_day(until, "until"),
    )
    if cleaned.since and cleaned.until and cleaned.until < cleaned.since:
        raise Invalid("The end date is before the start date.", field="until")
    return cleaned


@dataclass(frozen=True)
class AuditEvent:
    """One change recorded in the log: who did what to which object, from where."""

    id: UUID
    occurred_at: datetime
    #: user, api_token, system…
    actor_kind: str
    #: the actor's email or token name as it was then
    actor_label: str
    action: str
    target_type: str
    target_id: str
    ip: str | None
    user_agent: str
    #: what the action recorded (changed values, emails, roles…)
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, and the cursor of the next (older) page."""

    events: list[AuditEvent]
    next_cursor: str | None


def _event(row: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        occurred_at=row["occurred_at"],
        actor_kind=row["actor_kind"],
        actor_label=row["actor_label"],
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        details=json.loads(row["details"]) if row["details"] else {},
    )


async def list_events(
    ctx: TenantContext, filters: AuditFilter, cursor: str | None = None, limit: int = PAGE_SIZE
) -> AuditPage:
    """Events newest first, filtered, one keyset page of `limit` (1 to `PAGE_MAX`) at a
    time; `Invalid` for another `limit` or a forged cursor."""
    ctx.require(Permission.AUDIT_READ)
    if isinstance(limit, bool) or not 1 <= limit <= PAGE_MAX:
        raise Invalid("Ask for between 1 and {max} items per page.", field="limit", max=PAGE_MAX)
    after = decode_cursor(cursor)
    clauses = ["tenant_id = $1"]
    args: list[Any] = [ctx.tenant_id]
    if filters.action:
        args.append(filters.action)
        clauses.append(f"action = ${len(args)}")
    if filters.actor:
        args.append(contains_pattern(filters.actor))
        clauses.append(f"actor_label ILIKE ${len(args)}")
    zone = ctx.tenant.zone
    if filters.since:
        args.append(datetime.combine(filters.since, time(), zone))
        clauses.append(f"occurred_at >= ${len(args)}")
    if filters.until:
        args.append(datetime.combine(filters.until + timedelta(days=1), time(), zone))
        clauses.append(f"occurred_at < ${len(args)}")
    if after:
        args.extend(after)
        clauses.append(f"(occurred_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    # The clauses are constants of this function; every value is a bound parameter.
    sql = (
        "SELECT id, occurred_at, actor_kind, actor_label, action, target_type, target_id, "  # noqa: S608
        "host(ip) AS ip, user_agent, details FROM audit_event WHERE "
        + " AND ".join(clauses)
        + f" ORDER BY occurred_at DESC, id DESC LIMIT ${len(args)}"
    )
    async with tenant_transaction(ctx):
        rows = await fetch(sql, *args)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["occurred_at"], last["id"])
    return AuditPage([_event(row) for row in rows], next_cursor)


async def distinct_actions(ctx: TenantContext) -> list[str]:
    """Actions that occur in this tenant's log, for the filter menu."""
    ctx.require(Permission.AUDIT_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            "SELECT DISTINCT action FROM audit_event WHERE tenant_id = $1 ORDER BY action",
            ctx.tenant_id,
        )
    return [row["action"] for row in rows]
