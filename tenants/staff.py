"""Our own staff: who holds a back-office role. Staff are people (global accounts) with one
staff role each, apart from any organization's roles (`tenants.permissions.StaffRole`)."""

from __future__ import annotations

from uuid import UUID, uuid4

from core.database import execute, global_transaction
from core.errors import Invalid
from tenants.permissions import StaffRole


def staff_role(role: str) -> StaffRole:
    """`role` as a staff role; `Invalid` for anything else (a tenant role included)."""
    try:
        return StaffRole(role)
    except ValueError:
        raise Invalid("Choose a staff role.", field="role") from None


async def make_staff(user_id: UUID, role: str) -> None:
    """Give a person a back-office role (superadmin, account manager, support, content
    editor), or change the one they have."""
    chosen = staff_role(role)
    async with global_transaction():
        await execute(
            """INSERT INTO staff_member (id, user_id, role) VALUES ($1, $2, $3)
               ON CONFLICT (user_id) DO UPDATE SET role = excluded.role""",
            uuid4(),
            user_id,
            chosen.value,
        )
