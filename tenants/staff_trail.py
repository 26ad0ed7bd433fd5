"""The staff trail: every action of our staff, append-only (`staff_audit`, a global table).

Apart from `tenants.staff` so that `tenants.audit` can write to it (a staff member's event in a
tenant lands in both logs, in one transaction) without importing what imports the audit log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from core.database import DB, execute, fetch, global_transaction
from tenants.context import Actor, StaffContext
from tenants.permissions import StaffPermission


async def record_staff_action(
    staff: StaffContext | Actor,
    action: str,
    target_type: str = "",
    target_id: UUID | str = "",
    *,
    tenant_id: UUID | None = None,
    **details: Any,
) -> None:
    """Append one entry to the staff trail: in the open transaction if there is one (so that
    it commits with the change), otherwise in its own."""
    actor = staff.actor if isinstance(staff, StaffContext) else staff
    role = staff.role if isinstance(staff, StaffContext) else ""

    async def write() -> None:
        label, known_role = actor.label, role
        if (not label or not known_role) and actor.user_id is not None:
            # An actor made from an id alone (a staff member's own second factor): their
            # email and role as they are now. Read first, not in a subquery of the INSERT's
            # VALUES, which Citus refuses.
            found = await fetch(
                """SELECT u.email, s.role FROM user_account u
                   LEFT JOIN staff_member s ON s.user_id = u.id WHERE u.id = $1""",
                actor.user_id,
            )
            if found:
                label = label or found[0]["email"]
                known_role = known_role or found[0]["role"] or ""
        await execute(
            """INSERT INTO staff_audit (id, staff_user_id, staff_label, staff_role, action,
                   reason, organization_id, target_type, target_id, details, ip)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::inet)""",
            uuid4(),
            actor.user_id,
            label,
            known_role,
            action,
            actor.reason,
            tenant_id,
            target_type,
            str(target_id),
            json.dumps(details, default=str),
            actor.ip,
        )

    if DB.current_transaction.get() is not None:
        await write()
    else:
        async with global_transaction(actor.user_id):
            await write()


@dataclass(frozen=True)
class StaffAuditEntry:
    id: UUID
    occurred_at: datetime
    staff_label: str
    staff_role: str
    action: str
    reason: str
    organization_id: UUID | None
    target_type: str
    target_id: str
    details: dict[str, Any]
    #: the organization's name, when the entry concerns one
    organization_name: str = ""


async def dangerously_staff_trail(
    staff: StaffContext, *, tenant_id: UUID | None = None, limit: int = 100
) -> list[StaffAuditEntry]:
    """The staff trail, newest first (across tenants, or of one), for superadmins and account
    managers."""
    staff.require(StaffPermission.TENANTS_READ)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            """SELECT id, occurred_at, staff_label, staff_role, action, reason, organization_id,
                      target_type, target_id, details
               FROM staff_audit WHERE ($1::uuid IS NULL OR organization_id = $1)
               ORDER BY occurred_at DESC, id DESC LIMIT $2""",
            tenant_id,
            min(max(limit, 1), 500),
        )
        ids = list({row["organization_id"] for row in rows if row["organization_id"]})
        names = {
            row["id"]: row["name"]
            for row in await fetch("SELECT id, name FROM organization WHERE id = ANY($1)", ids)
        }
    return [
        StaffAuditEntry(
            **{**row, "details": _json(row["details"])},
            organization_name=names.get(row["organization_id"], ""),
        )
        for row in rows
    ]


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})
