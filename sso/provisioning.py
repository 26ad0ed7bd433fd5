"""Just-in-time provisioning: who a proven identity signs in as, and what it may create.

The rules (issue 10), in the order `admit` applies them:

- The connection must be enabled and its organization open (not suspended, not closed); a
  suspended membership (SCIM's active=false) is refused (`provisioning.suspended`).
- An account exists for the email: it is linked only when the provider verified the email
  (`provisioning.unverified_email` otherwise), and only when its owner is already a member,
  holds a pending invitation, or the email is in one of the organization's verified domains
  (`provisioning.domain` otherwise). A disabled account is refused.
- No account exists: one is minted (no password; the email marked verified when the provider
  says so) only for an email in the organization's verified domains, or for a pending
  invitation whose email the provider verified.
- Membership: a member stays one (an explicit group mapping brings their role up to date,
  an owner's aside); a pending invitation is accepted with its role; anyone else from a
  verified domain becomes a member with the mapped role (the first group of the connection's
  `role_mapping` that the person belongs to, else its `default_role`). A campaign sign-in
  makes no membership: the campaign's start makes the learner.

Never an account for a domain the organization has not verified, never a link to an
account the provider did not vouch for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from core.database import (
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Conflict, Invalid, NotFound
from sso.domains import email_domain
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from tenants import audit
from tenants.accounts import UserAccount, insert_account
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.organizations import summary, summary_columns, tenant_by_id
from tenants.permissions import Role, permissions_of

_ASSIGNABLE = (Role.ADMIN.value, Role.MEMBER.value)


@dataclass(frozen=True)
class ConnectionRules:
    """What provisioning reads of a connection."""

    id: UUID
    enabled: bool
    role_mapping: dict[str, str]
    default_role: str
    external_id_claim: str


@dataclass(frozen=True)
class Admission:
    """Who a proven identity is signed in as, and what provisioning did for it."""

    user: UserAccount
    tenant: TenantSummary
    #: the membership in the connection's organization (None for a campaign participant who
    #: is not a member)
    membership_id: UUID | None
    role: str | None
    account_created: bool
    membership_created: bool
    #: the value of the connection's `external_id_claim` in the claims ("" when none)
    external_id: str


def mapped_role(rules: ConnectionRules, groups: tuple[str, ...]) -> tuple[str, bool]:
    """(role, whether a group mapping chose it): the first of the connection's mapped groups
    the person belongs to, in the mapping's order, else the default role."""
    member_of = set(groups)
    for group, role in rules.role_mapping.items():
        if group in member_of and role in _ASSIGNABLE:
            return role, True
    default = rules.default_role if rules.default_role in _ASSIGNABLE else Role.MEMBER.value
    return default, False


def external_id_of(identity: ProvenIdentity, claim: str) -> str:
    """The connection's external-id claim as text ("" when unset or absent)."""
    if not claim:
        return ""
    value: Any = identity.claims.get(claim)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if value is None or isinstance(value, dict):
        return ""
    return str(value).strip()[:200]


#: Everything admission reads, in one round trip: the organization, the connection, whether
#: the email's domain is verified, the account (and staff role), its membership and a pending
#: invitation. Every tenant table is filtered on $1, so Citus routes it to the tenant's shard.
_ADMISSION_SQL = f"""
SELECT {summary_columns("o")},
       c.id AS connection_id, c.enabled, c.role_mapping, c.default_role, c.external_id_claim,
       EXISTS (SELECT 1 FROM sso_domain d WHERE d.tenant_id = $1 AND d.domain = $3
               AND d.verified_at IS NOT NULL) AS in_verified_domain,
       u.id AS user_id, u.email AS user_email, u.name AS user_name, u.locale AS user_locale,
       u.email_verified AS user_email_verified, u.is_active AS user_active,
       s.role AS staff_role,
       m.id AS membership_id, m.role AS membership_role, m.suspended_at,
       (SELECT i.id FROM invitation i WHERE i.tenant_id = $1 AND lower(i.email) = lower($4)
          AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
        ORDER BY i.created_at DESC LIMIT 1) AS invitation_id,
       (SELECT i.role FROM invitation i WHERE i.tenant_id = $1 AND lower(i.email) = lower($4)
          AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
        ORDER BY i.created_at DESC LIMIT 1) AS invitation_role
FROM organization o
LEFT JOIN sso_connection c ON c.tenant_id = $1 AND c.id = $2
LEFT JOIN user_account u ON lower(u.email) = lower($4)
LEFT JOIN staff_member s ON s.user_id = u.id
LEFT JOIN membership m ON m.tenant_id = $1 AND m.user_id = u.id
WHERE o.id = $1
"""  # noqa: S608 - constant columns


def _rules(row: dict[str, Any]) -> ConnectionRules | None:
    if row["connection_id"] is None:
        return None
    mapping = row["role_mapping"]
    if isinstance(mapping, str):
        mapping = json.loads(mapping)
    return ConnectionRules(
        id=row["connection_id"],
        enabled=row["enabled"],
        role_mapping={str(k): str(v) for k, v in dict(mapping or {}).items()},
        default_role=row["default_role"],
        external_id_claim=row["external_id_claim"],
    )


def _refuse(reason: str, detail: str) -> SignInRefused:
    return SignInRefused(reason, detail)


async def admit(
    identity: ProvenIdentity,
    *,
    campaign: bool = False,
    ip: str | None = None,
    user_agent: str = "",
) -> Admission:
    """The account (and membership) `identity` signs in as, created as the rules of this
    module allow, in one transaction with its audit entries; `SignInRefused` (with its
    reason code) when the rules refuse it. `campaign`: a participant's sign-in, which makes
    no membership."""
    try:
        domain = email_domain(identity.email)
    except Invalid:
        raise _refuse(
            "provisioning.email", f"the provider gave no valid email ({identity.email!r})"
        ) from None
    async with global_transaction():
        await dangerously_switch_tenant(identity.tenant_id)
        rows = await fetch(
            _ADMISSION_SQL, identity.tenant_id, identity.connection_id, domain, identity.email
        )
        if not rows or rows[0]["status"] in ("suspended", "closed"):
            raise _refuse("provisioning.organization", "the organization is not open")
        row = rows[0]
        tenant = summary(row)
        rules = _rules(row)
        if rules is None or not rules.enabled:
            raise _refuse("provisioning.connection", "the connection is missing or disabled")
        in_verified_domain: bool = row["in_verified_domain"]
        user_row = (
            {"id": row["user_id"], "is_active": row["user_active"]}
            if row["user_id"] is not None
            else None
        )
        membership = (
            {
                "id": row["membership_id"],
                "role": row["membership_role"],
                "suspended_at": row["suspended_at"],
            }
            if row["membership_id"] is not None
            else None
        )
        invitation = (
            {"id": row["invitation_id"], "role": row["invitation_role"]}
            if row["invitation_id"] is not None
            else None
        )

        if user_row is not None and not identity.email_verified:
            raise _refuse(
                "provisioning.unverified_email",
                f"an account exists for {identity.email} and the provider did not verify it",
            )
        if user_row is not None and not user_row["is_active"]:
            raise _refuse("provisioning.disabled", f"the account of {identity.email} is disabled")
        if membership is not None and membership["suspended_at"] is not None:
            # Suspended by the organization (its directory, through SCIM): no way in.
            raise _refuse(
                "provisioning.suspended", f"the membership of {identity.email} is suspended"
            )
        if not (in_verified_domain or membership is not None or invitation is not None):
            raise _refuse(
                "provisioning.domain",
                f"{domain} is not a verified domain of the organization, and "
                f"{identity.email} is neither a member nor invited",
            )
        if user_row is None and not in_verified_domain and not identity.email_verified:
            raise _refuse(
                "provisioning.unverified_email",
                f"{identity.email} is invited, but the provider did not verify it",
            )

        account_created = user_row is None
        if user_row is None:
            try:
                account = await insert_account(
                    identity.email,
                    (identity.name or identity.email)[:200],
                    None,
                    tenant.default_locale,
                    verified=identity.email_verified,
                )
            except Conflict:
                # Two first sign-ins at once: the other one made the account.
                raise _refuse(
                    "provisioning.race", "the account was made meanwhile; sign in again"
                ) from None
            except Invalid as error:
                raise _refuse("provisioning.email", f"the account was refused: {error}") from None
            user = account
        else:
            user = UserAccount(
                id=row["user_id"],
                email=row["user_email"],
                name=row["user_name"],
                locale=row["user_locale"],
                email_verified=row["user_email_verified"],
                is_staff=row["staff_role"] is not None,
                staff_role=row["staff_role"],
            )
        await execute("UPDATE user_account SET last_login_at = now() WHERE id = $1", user.id)
        ctx = TenantContext(
            tenant=tenant,
            actor=Actor(
                kind="user", user_id=user.id, label=user.email, ip=ip, user_agent=user_agent
            ),
            permissions=permissions_of(Role.MEMBER),
        )
        if account_created:
            await audit.record(
                ctx,
                "sso.account_created",
                "user",
                user.id,
                email=user.email,
                connection_id=str(identity.connection_id),
                email_verified=identity.email_verified,
            )
        membership_id: UUID | None = membership["id"] if membership else None
        role: str | None = membership["role"] if membership else None
        membership_created = False
        if membership is not None:
            role = await _sync_role(ctx, membership, rules, identity)
        elif invitation is not None:
            membership_id, role = await _join(ctx, user, invitation["role"], identity)
            membership_created = True
            await execute(
                """UPDATE invitation SET accepted_at = now(), accepted_by = $3
                   WHERE tenant_id = $1 AND id = $2""",
                identity.tenant_id,
                invitation["id"],
                user.id,
            )
            await audit.record(
                ctx, "invitation.accepted", "invitation", invitation["id"], email=user.email
            )
        elif not campaign:
            new_role, _ = mapped_role(rules, identity.groups)
            membership_id, role = await _join(ctx, user, new_role, identity)
            membership_created = True
        await audit.record(
            ctx,
            "sso.sign_in",
            "sso_connection",
            identity.connection_id,
            email=user.email,
            subject=identity.subject,
            campaign=campaign,
        )
    return Admission(
        user=user,
        tenant=tenant,
        membership_id=membership_id,
        role=role,
        account_created=account_created,
        membership_created=membership_created,
        external_id=external_id_of(identity, rules.external_id_claim),
    )


async def _join(
    ctx: TenantContext, user: UserAccount, role: str, identity: ProvenIdentity
) -> tuple[UUID, str]:
    membership_id = uuid4()
    try:
        await execute(
            "INSERT INTO membership (tenant_id, id, user_id, role) VALUES ($1, $2, $3, $4)",
            ctx.tenant_id,
            membership_id,
            user.id,
            role,
        )
    except asyncpg.UniqueViolationError:
        # Two first sign-ins at once: the other one made the membership.
        raise _refuse(
            "provisioning.race", "the membership was made meanwhile; sign in again"
        ) from None
    await audit.record(
        ctx,
        "member.added",
        "membership",
        membership_id,
        email=user.email,
        role=role,
        via="sso",
        connection_id=str(identity.connection_id),
    )
    return membership_id, role


async def _sync_role(
    ctx: TenantContext,
    membership: dict[str, Any],
    rules: ConnectionRules,
    identity: ProvenIdentity,
) -> str:
    """A member's role after sign-in: an explicit group mapping updates it (never an owner's,
    and never to owner); the default role never overrides a role given in the console."""
    current: str = membership["role"]
    role, by_group = mapped_role(rules, identity.groups)
    if not by_group or current == Role.OWNER.value or role == current:
        return current
    await execute(
        "UPDATE membership SET role = $3 WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        membership["id"],
        role,
    )
    await audit.record(
        ctx,
        "member.role_changed",
        "membership",
        membership["id"],
        email=ctx.actor.label,
        old_role=current,
        new_role=role,
        via="sso",
        connection_id=str(identity.connection_id),
    )
    return role


async def record_refusal(
    tenant_id: UUID,
    connection_id: UUID,
    reason: str,
    detail: str,
    *,
    email: str = "",
    user_id: UUID | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> None:
    """Append `sso.refused` (reason code and detail) to the organization's audit log, in a
    transaction of its own (the refused sign-in's work, if any, was rolled back)."""
    try:
        tenant = await tenant_by_id(tenant_id)
    except NotFound:
        return
    ctx = TenantContext(
        tenant=tenant,
        actor=Actor(
            kind="user" if user_id else "system",
            user_id=user_id,
            label=email[:254],
            ip=ip,
            user_agent=user_agent,
        ),
    )
    async with tenant_transaction(ctx):
        await audit.record(
            ctx,
            "sso.refused",
            "sso_connection",
            connection_id,
            reason=reason,
            detail=detail[:1000],
            email=email[:254],
        )
