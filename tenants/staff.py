"""Our own staff: who holds a back-office role, their second factor, and their audit trail.

Staff are people (global accounts) with one staff role each, apart from any organization's
roles (`tenants.permissions.StaffRole`). Every staff member signs in with their password and
then a TOTP code (RFC 6238, pyotp) or one of their single-use recovery codes: the back office's
guard (`web.guards.staff_member`) lets no staff session through without it.

- The TOTP seed is stored encrypted (`core.secrets`, bound to the staff member's id); a code
  is accepted once (the last time step used is kept), within one step of clock drift.
- Recovery codes are random, shown once, and stored as SHA-256 (they are high-entropy: a
  slow hash would buy nothing); each works once.
- `staff_audit` is the staff trail, append-only. Work inside a tenant is done with
  `acting_in_tenant(with_reason(staff, reason), tenant)`: `tenants.audit.record` then writes
  the tenant's own event (actor kind `staff`, the service provider) and the staff trail's in
  the same transaction. Work outside any tenant (plans, staff, the bank) calls `record_staff_action`
  in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import pyotp

from core.database import DB, execute, fetch, global_transaction
from core.errors import Invalid, NotFound
from core.secrets import keyring
from tenants.context import Actor, StaffContext, TenantContext, TenantSummary
from tenants.permissions import Role, StaffPermission, StaffRole, permissions_of

#: The name authenticator apps show next to the account.
ISSUER = "Jalon"
RECOVERY_CODES = 10
#: A staff member's reason for a sensitive action: required, and bounded.
REASON_MAX = 500
_STEP_SECONDS = 30
WRONG_CODE = "This code is not valid. Enter the current code of your app."


def staff_role(role: str) -> StaffRole:
    """`role` as a staff role; `Invalid` for anything else (a tenant role included)."""
    try:
        return StaffRole(role)
    except ValueError:
        raise Invalid("Choose a staff role.", field="role") from None


async def make_staff(user_id: UUID, role: str) -> None:
    """Give a person a back-office role (superadmin, account manager, support, content
    editor), or change the one they have (the operator's command; staff screens go through
    the staff-managing permission)."""
    chosen = staff_role(role)
    async with global_transaction():
        await execute(
            """INSERT INTO staff_member (id, user_id, role) VALUES ($1, $2, $3)
               ON CONFLICT (user_id) DO UPDATE SET role = excluded.role, disabled_at = NULL""",
            uuid4(),
            user_id,
            chosen.value,
        )


@dataclass(frozen=True)
class StaffMember:
    """A staff member as the back office lists them."""

    user_id: UUID
    email: str
    name: str
    role: str
    #: whether their second factor is set up (until then they can only set it up)
    second_factor: bool
    recovery_codes_left: int
    created_at: datetime
    disabled_at: datetime | None


_MEMBER_SQL = """
SELECT s.user_id, u.email, u.name, s.role, s.totp_confirmed_at IS NOT NULL AS second_factor,
       cardinality(s.recovery_codes) AS recovery_codes_left, s.created_at, s.disabled_at
FROM staff_member s JOIN user_account u ON u.id = s.user_id
"""


def _member(row: dict[str, Any]) -> StaffMember:
    return StaffMember(**row)


async def staff_member_of(user_id: UUID) -> StaffMember | None:
    """The staff record of `user_id`, or None (not staff, or disabled)."""
    async with global_transaction(user_id):
        rows = await fetch(_MEMBER_SQL + " WHERE s.user_id = $1 AND s.disabled_at IS NULL", user_id)
    return _member(rows[0]) if rows else None


async def list_staff(staff: StaffContext) -> list[StaffMember]:
    """Every staff member, disabled ones last (for superadmins)."""
    staff.require(StaffPermission.STAFF_MANAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch(_MEMBER_SQL + " ORDER BY s.disabled_at NULLS FIRST, u.email")
    return [_member(row) for row in rows]


# --- the second factor ------------------------------------------------------------------------


def _context(user_id: UUID) -> str:
    return f"staff-totp:{user_id}"


def provisioning_uri(secret: str, email: str) -> str:
    """The `otpauth://` URI an authenticator app reads (from a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


async def begin_enrolment(user_id: UUID) -> str:
    """The TOTP seed to set up (base32): a new one stored for `user_id` unless one is already
    waiting for confirmation. `Invalid` once confirmed: a second factor is replaced only by a
    superadmin's reset (`reset_second_factor`), never by whoever holds the password."""
    async with global_transaction(user_id):
        rows = await fetch(
            "SELECT totp_secret, totp_confirmed_at FROM staff_member"
            " WHERE user_id = $1 AND disabled_at IS NULL FOR UPDATE",
            user_id,
        )
        if not rows:
            raise NotFound()
        if rows[0]["totp_confirmed_at"] is not None:
            raise Invalid("Your second factor is already set up.")
        if rows[0]["totp_secret"] is not None:
            return keyring().decrypt(rows[0]["totp_secret"], _context(user_id))
        secret = pyotp.random_base32()
        await execute(
            "UPDATE staff_member SET totp_secret = $2 WHERE user_id = $1",
            user_id,
            keyring().encrypt(secret, _context(user_id)),
        )
        return secret


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def _new_recovery_codes() -> list[str]:
    # 10 groups of 4+4 lowercase hex digits: 64 bits each, typed as "1a2b-3c4d".
    return [f"{secrets.token_hex(2)}-{secrets.token_hex(2)}" for _ in range(RECOVERY_CODES)]


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step `code` is valid for, within one step of drift; None when it is not."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // _STEP_SECONDS)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * _STEP_SECONDS), code):
            return step
    return None


async def confirm_enrolment(user_id: UUID, code: str, *, now: float | None = None) -> list[str]:
    """Confirm the seed with a first code from the app; the recovery codes, shown once.
    `Invalid` for a wrong code (the seed stays, to try again)."""
    now = time.time() if now is None else now
    async with global_transaction(user_id):
        rows = await fetch(
            "SELECT totp_secret, totp_confirmed_at FROM staff_member"
            " WHERE user_id = $1 AND disabled_at IS NULL FOR UPDATE",
            user_id,
        )
        if not rows or rows[0]["totp_secret"] is None:
            raise Invalid("Start setting up your second factor first.")
        if rows[0]["totp_confirmed_at"] is not None:
            raise Invalid("Your second factor is already set up.")
        secret = keyring().decrypt(rows[0]["totp_secret"], _context(user_id))
        step = _matching_step(secret, code, now)
        if step is None:
            raise Invalid(WRONG_CODE, field="code")
        codes = _new_recovery_codes()
        await execute(
            """UPDATE staff_member SET totp_confirmed_at = now(), totp_last_step = $2,
                      recovery_codes = $3 WHERE user_id = $1""",
            user_id,
            step,
            [_hash_code(c) for c in codes],
        )
    await record_staff_action(_self_actor(user_id), "staff.second_factor_enrolled")
    return codes


async def verify_second_factor(user_id: UUID, code: str, *, now: float | None = None) -> bool:
    """Whether `code` is the staff member's current TOTP code (not used before) or one of
    their unused recovery codes (then spent). One statement each: two requests racing with the
    same code cannot both pass."""
    now = time.time() if now is None else now
    async with global_transaction(user_id):
        rows = await fetch(
            "SELECT totp_secret FROM staff_member WHERE user_id = $1"
            " AND disabled_at IS NULL AND totp_confirmed_at IS NOT NULL",
            user_id,
        )
        if not rows:
            return False
        secret = keyring().decrypt(rows[0]["totp_secret"], _context(user_id))
        step = _matching_step(secret, code, now)
        if step is not None:
            used = await fetch(
                """UPDATE staff_member SET totp_last_step = $2 WHERE user_id = $1
                   AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING user_id""",
                user_id,
                step,
            )
            return bool(used)
        spent = await fetch(
            """UPDATE staff_member SET recovery_codes = array_remove(recovery_codes, $2)
               WHERE user_id = $1 AND $2 = ANY(recovery_codes) RETURNING user_id""",
            user_id,
            _hash_code(code),
        )
        return bool(spent)


async def reset_second_factor(staff: StaffContext, user_id: UUID, reason: str) -> None:
    """Forget a staff member's second factor (a lost phone): they set up a new one at their
    next sign-in. Superadmins only; audited with the reason."""
    staff.require(StaffPermission.STAFF_MANAGE)
    reason = clean_reason(reason)
    async with global_transaction(staff.user_id):
        done = await fetch(
            """UPDATE staff_member SET totp_secret = NULL, totp_confirmed_at = NULL,
                      totp_last_step = NULL, recovery_codes = '{}'
               WHERE user_id = $1 RETURNING user_id""",
            user_id,
        )
        if not done:
            raise NotFound()
        await record_staff_action(
            with_reason(staff, reason), "staff.second_factor_reset", "user", user_id
        )


# --- acting, and the audit trail --------------------------------------------------------------


def clean_reason(reason: str | None) -> str:
    """A staff member's reason for a sensitive action: required, one line or a few."""
    text = " ".join((reason or "").split())
    if len(text) < 3:
        raise Invalid("Give the reason for this action.", field="reason")
    if len(text) > REASON_MAX:
        raise Invalid("Keep the reason under {max} characters.", field="reason", max=REASON_MAX)
    return text


def with_reason(staff: StaffContext, reason: str) -> StaffContext:
    """`staff` acting for `reason` (recorded with whatever they do next)."""
    return replace(staff, actor=replace(staff.actor, reason=clean_reason(reason)))


def acting_in_tenant(staff: StaffContext, tenant: TenantSummary) -> TenantContext:
    """A tenant context for staff work inside `tenant`: the staff member as the actor (the
    tenant's audit log shows the service provider), and an owner's permissions there; the
    back office's own permission checks come first. Each event it records also lands in the
    staff trail (`tenants.audit.record`)."""
    return TenantContext(
        tenant=tenant, actor=staff.actor, permissions=permissions_of(Role.OWNER), role=None
    )


def _self_actor(user_id: UUID) -> StaffContext:
    return StaffContext(actor=Actor(kind="staff", user_id=user_id), role="")


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
        await execute(
            """INSERT INTO staff_audit (id, staff_user_id, staff_label, staff_role, action,
                   reason, organization_id, target_type, target_id, details, ip)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::inet)""",
            uuid4(),
            actor.user_id,
            actor.label,
            role,
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
    return [StaffAuditEntry(**{**row, "details": _json(row["details"])}) for row in rows]


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})
