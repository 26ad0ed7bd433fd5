"""Our own staff: who holds a back-office role, their second factor, and their audit trail.

Staff are people (global accounts) with one staff role each, apart from any organization's
roles (`tenants.permissions.StaffRole`). Every staff member signs in with their password and
then a TOTP code (RFC 6238, pyotp) or one of their single-use recovery codes: the back office's
guard (`web.guards.staff_member`) lets no staff session through without it.

- The TOTP seed is stored encrypted (`core.secrets`, bound to the staff member's id); a code
  is accepted once (the last time step used is kept), within one step of clock drift.
- Recovery codes are 64 random bits, shown once, and stored as HMAC-SHA256 under a key
  derived from the secret key (high-entropy: a slow hash would buy nothing; keyed, a dump of
  the table alone does not allow offline guessing); each works once.
- `staff_audit` is the staff trail, append-only (`tenants.staff_trail`). Work inside a tenant
  is done with `acting_in_tenant(with_reason(staff, reason), tenant)`: `tenants.audit.record`
  then writes the tenant's own event (actor kind `staff`, the service provider) and the staff
  trail's in the same transaction. Work outside any tenant (plans, staff, the bank) calls
  `record_staff_action` in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pyotp

from core.database import execute, fetch, global_transaction, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import translate
from core.mail import queue_mail
from core.secrets import keyring
from core.settings import Settings, get_settings
from core.validation import clean_email
from tenants import audit
from tenants.accounts import UserAccount, _issue_token, insert_account
from tenants.context import Actor, StaffContext, TenantContext, TenantSummary
from tenants.organizations import tenant_by_id
from tenants.permissions import Role, StaffPermission, StaffRole, permissions_of
from tenants.staff_trail import record_staff_action

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


#: Make a person staff, or change their role; a disabled staff member who comes back starts
#: afresh: a new second factor to set up (the old seed and recovery codes are forgotten).
_UPSERT_STAFF = """
INSERT INTO staff_member (id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET
    role = excluded.role,
    disabled_at = NULL,
    totp_secret = CASE WHEN staff_member.disabled_at IS NULL THEN staff_member.totp_secret END,
    totp_confirmed_at = CASE WHEN staff_member.disabled_at IS NULL
                             THEN staff_member.totp_confirmed_at END,
    totp_last_step = CASE WHEN staff_member.disabled_at IS NULL
                          THEN staff_member.totp_last_step END,
    recovery_codes = CASE WHEN staff_member.disabled_at IS NULL
                          THEN staff_member.recovery_codes ELSE '{}' END
"""
UNVERIFIED = (
    "This account's address is not verified yet: the person must confirm it first, "
    "or use another address."
)


async def make_staff(user_id: UUID, role: str) -> None:
    """Give a person a back-office role (superadmin, account manager, support, content
    editor), or change the one they have (the operator's command; staff screens go through
    the staff-managing permission)."""
    chosen = staff_role(role)
    async with global_transaction():
        await execute(
            _UPSERT_STAFF,
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
    # Keyed (HMAC-SHA256 under a key derived from the secret key): a dump of the table alone
    # does not let anyone test guesses offline.
    key = hashlib.sha256(b"jalon staff recovery codes\0" + get_settings().secret_key.encode())
    normal = code.strip().replace("-", "").replace(" ", "").lower()
    return hmac.new(key.digest(), normal.encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes() -> list[str]:
    # 8+8 lowercase hex digits: 64 random bits each, typed as "1a2b3c4d-5e6f7a8b".
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step `code` is valid for, within one step of drift; None when it is not."""
    code = code.strip().replace(" ", "")
    # ASCII digits only: other scripts' digits pass `isdigit` and make compare_digest raise.
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
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
        if not code.isascii():
            return False
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
        raise Invalid("A reason has at most {max} characters.", field="reason", max=REASON_MAX)
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
        tenant=tenant,
        actor=staff.actor,
        permissions=permissions_of(Role.OWNER),
        role=Role.OWNER.value,
    )


def _self_actor(user_id: UUID) -> StaffContext:
    return StaffContext(actor=Actor(kind="staff", user_id=user_id), role="")


# --- managing staff (superadmins) -------------------------------------------------------------

#: How long the link a new staff member gets to choose their password stays valid.
WELCOME_TTL = timedelta(days=3)
LAST_SUPERADMIN = "There must stay at least one active superadmin."


async def _locked_member(user_id: UUID) -> dict[str, Any]:
    rows = await fetch(
        "SELECT user_id, role, disabled_at FROM staff_member WHERE user_id = $1 FOR UPDATE",
        user_id,
    )
    if not rows:
        raise NotFound()
    return dict(rows[0])


async def _other_active_superadmins(user_id: UUID) -> int:
    # Locks every superadmin row: two superadmins demoting each other at once cannot both pass.
    rows = await fetch(
        """SELECT user_id FROM staff_member WHERE role = 'superadmin' AND disabled_at IS NULL
           AND user_id <> $1 FOR UPDATE""",
        user_id,
    )
    return len(rows)


async def has_superadmin() -> bool:
    """Whether an active superadmin exists (`jalon staff create` makes only the first)."""
    async with global_transaction():
        rows = await fetch(
            "SELECT 1 FROM staff_member WHERE role = 'superadmin' AND disabled_at IS NULL LIMIT 1"
        )
    return bool(rows)


async def _mail_welcome(user: UserAccount, settings: Settings) -> None:
    """A new staff member's link to choose their password (a password-reset token, longer
    lived), then the second factor at their first sign-in."""
    token = await _issue_token(user.id, "password_reset", WELCOME_TTL)
    await queue_mail(
        user.email,
        translate(user.locale, "Your Jalon back-office account"),
        translate(
            user.locale,
            "Hello {name},\n\nAn account has been made for you in the Jalon back office. "
            "Choose your password with this link (valid for three days):\n{link}\n\n"
            "Then sign in: the first time, you set up an authenticator app for your "
            "second factor (the page shows a QR code).",
            name=user.name,
            link=f"{settings.base_url}/password/reset/{token}",
        ),
    )


async def create_staff(
    staff: StaffContext, email: str, name: str, role: str, settings: Settings
) -> StaffMember:
    """Give the person of `email` a staff role: an existing account is promoted if its address
    is verified (a disabled staff member comes back, with a new second factor to set up), a
    new one is made and mailed a link to choose its password.
    Superadmins only; audited (`staff.created`)."""
    staff.require(StaffPermission.STAFF_MANAGE)
    chosen = staff_role(role)
    address = clean_email(email)
    async with global_transaction(staff.user_id):
        found = await fetch(
            "SELECT id, email_verified FROM user_account WHERE lower(email) = lower($1)",
            address,
        )
        created = not found
        if created:
            user = await insert_account(address, name, None, settings.default_locale, verified=True)
            user_id = user.id
        else:
            # Whoever signed up first with this address chose the password: an address never
            # confirmed may not be theirs, and must not become a staff account.
            if not found[0]["email_verified"]:
                raise Conflict(UNVERIFIED, field="email")
            user_id = found[0]["id"]
        current = await fetch(
            "SELECT role FROM staff_member WHERE user_id = $1 AND disabled_at IS NULL", user_id
        )
        if current:
            raise Conflict("This person is already on the staff.", field="email")
        await execute(
            _UPSERT_STAFF,
            uuid4(),
            user_id,
            chosen.value,
        )
        if created:
            await _mail_welcome(user, settings)
        await record_staff_action(
            staff, "staff.created", "user", user_id, role=chosen.value, new_account=created
        )
        rows = await fetch(_MEMBER_SQL + " WHERE s.user_id = $1", user_id)
    return _member(rows[0])


async def change_staff_role(staff: StaffContext, user_id: UUID, role: str, reason: str) -> None:
    """Give a staff member another role; the last active superadmin keeps theirs. Superadmins
    only; audited with the reason (`staff.role_changed`)."""
    staff.require(StaffPermission.STAFF_MANAGE)
    chosen = staff_role(role)
    acting = with_reason(staff, reason)
    async with global_transaction(staff.user_id):
        member = await _locked_member(user_id)
        if member["disabled_at"] is not None:
            raise Invalid("This staff member is disabled.")
        if member["role"] == chosen.value:
            raise Invalid("This staff member already has this role.", field="role")
        if member["role"] == StaffRole.SUPERADMIN.value and not (
            await _other_active_superadmins(user_id)
        ):
            raise Invalid(LAST_SUPERADMIN, field="role")
        await execute("UPDATE staff_member SET role = $2 WHERE user_id = $1", user_id, chosen.value)
        await record_staff_action(
            acting, "staff.role_changed", "user", user_id, before=member["role"], after=chosen.value
        )


async def disable_staff(staff: StaffContext, user_id: UUID, reason: str) -> None:
    """Take a staff member's back-office access away, at once (their sessions find no staff
    role from the next request). Never oneself, never the last active superadmin. Superadmins
    only; audited with the reason (`staff.disabled`)."""
    staff.require(StaffPermission.STAFF_MANAGE)
    acting = with_reason(staff, reason)
    if user_id == staff.user_id:
        raise Invalid("You cannot disable your own staff access.")
    async with global_transaction(staff.user_id):
        member = await _locked_member(user_id)
        if member["disabled_at"] is not None:
            raise Invalid("This staff member is already disabled.")
        if member["role"] == StaffRole.SUPERADMIN.value and not (
            await _other_active_superadmins(user_id)
        ):
            raise Invalid(LAST_SUPERADMIN)
        await execute("UPDATE staff_member SET disabled_at = now() WHERE user_id = $1", user_id)
        await record_staff_action(acting, "staff.disabled", "user", user_id, role=member["role"])


async def staff_member_by_id(staff: StaffContext, user_id: UUID) -> StaffMember:
    """One staff member, disabled or not (superadmins only); `NotFound` otherwise."""
    staff.require(StaffPermission.STAFF_MANAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch(_MEMBER_SQL + " WHERE s.user_id = $1", user_id)
    if not rows:
        raise NotFound()
    return _member(rows[0])


async def rotate_totp_keys() -> int:
    """Re-encrypt every staff TOTP seed under the current key (`jalon sso rotate-keys`); how
    many changed. A seed no key opens stops with `SecretUnreadable`."""
    ring = keyring()
    ring.current  # noqa: B018 - fail before the sweep when no key is configured
    changed = 0
    async with global_transaction():
        rows = await fetch(
            "SELECT user_id, totp_secret FROM staff_member WHERE totp_secret IS NOT NULL FOR UPDATE"
        )
        for row in rows:
            if ring.is_current(row["totp_secret"]):
                continue
            await execute(
                "UPDATE staff_member SET totp_secret = $2 WHERE user_id = $1",
                row["user_id"],
                ring.reencrypt(row["totp_secret"], _context(row["user_id"])),
            )
            changed += 1
    return changed


# --- read-only impersonation ------------------------------------------------------------------


async def start_impersonation(staff: StaffContext, tenant_id: UUID, reason: str) -> TenantSummary:
    """Record that `staff` opens `tenant`'s console read-only, for `reason` (in the tenant's
    audit log, as the service provider, and in the staff trail). The session keeps the rest
    (`web.guards`). Staff who may read tenants only."""
    return await _impersonation_event(staff, tenant_id, reason, "impersonation.started")


async def stop_impersonation(staff: StaffContext, tenant_id: UUID, reason: str) -> TenantSummary:
    """Record the end of a read-only view of `tenant` (both audit logs)."""
    return await _impersonation_event(staff, tenant_id, reason, "impersonation.stopped")


async def _impersonation_event(
    staff: StaffContext, tenant_id: UUID, reason: str, action: str
) -> TenantSummary:
    staff.require(StaffPermission.TENANTS_READ)
    acting = with_reason(staff, reason)
    tenant = await tenant_by_id(tenant_id)
    ctx = acting_in_tenant(acting, tenant)
    async with tenant_transaction(ctx):
        await audit.record(ctx, action, "organization", tenant.id)
    return tenant
