"""Invitations: a member invites someone by email with a role; the link mailed to them, valid
7 days, makes them a member once accepted (creating their account when they have none)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
from core.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from core.i18n import translate
from core.ids import uuid_or_404
from core.l10n import format_moment
from core.mail import queue_mail
from core.security import new_token, token_digest
from core.settings import Settings
from core.validation import clean_choice, clean_email, clean_slug
from tenants import audit
from tenants.accounts import UserAccount, check_new_account, insert_account
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.members import ROLES
from tenants.organizations import SUMMARY_SQL, summary
from tenants.permissions import Permission, Role

INVITATION_TTL = timedelta(days=7)
_INVITATION_STATUS = """CASE WHEN accepted_at IS NOT NULL THEN 'accepted'
    WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at < now() THEN 'expired'
    ELSE 'pending' END"""
_INVITATION_COLUMNS = f"""id, email, role, created_at, expires_at, last_sent_at, send_count,
    accepted_at, revoked_at, expires_at < now() AS expired, {_INVITATION_STATUS} AS status"""


@dataclass(frozen=True)
class Invitation:
    """An invitation to join the organization, as its members see it."""

    id: UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    last_sent_at: datetime
    send_count: int
    accepted_at: datetime | None
    revoked_at: datetime | None
    expired: bool
    #: pending, expired, accepted or revoked
    status: str


def _invitation(row: dict[str, Any]) -> Invitation:
    return Invitation(
        id=row["id"],
        email=row["email"],
        role=row["role"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_sent_at=row["last_sent_at"],
        send_count=row["send_count"],
        accepted_at=row["accepted_at"],
        revoked_at=row["revoked_at"],
        expired=row["expired"],
        status=row["status"],
    )


# --- accessors -------------------------------------------------------------------------


async def access_invitation(
    ctx: TenantContext, invitation_id: UUID | str, *, for_update: bool = True
) -> Invitation:
    """The invitation `invitation_id` of this tenant (locked for update unless asked not to);
    404 alike for an unknown id and another tenant's. Call inside the tenant's transaction."""
    lock = "FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"""SELECT {_INVITATION_COLUMNS} FROM invitation
            WHERE tenant_id = $1 AND id = $2 {lock}""",  # noqa: S608 - constant clauses
        ctx.tenant_id,
        uuid_or_404(invitation_id),
    )
    if not rows:
        raise NotFound()
    return _invitation(rows[0])


# --- the organization's side -----------------------------------------------------------


def _invitation_link(settings: Settings, slug: str, token: str) -> str:
    return f"{settings.base_url}/invitations/{slug}/{token}"


async def _mail_invitation(
    ctx: TenantContext,
    email: str,
    role: str,
    token: str,
    settings: Settings,
    locale: str,
    expires_at: datetime,
) -> None:
    """The invitation mail, in `locale`: its link and until when it works, in the
    organization's zone, named."""
    link = _invitation_link(settings, ctx.tenant.slug, token)
    await queue_mail(
        email,
        translate(
            locale, "You are invited to join {organization} on Jalon", organization=ctx.tenant.name
        ),
        translate(
            locale,
            "Hello,\n\n{inviter} invites you to join {organization} on Jalon as {role}.\n"
            "Accept by {expires}:\n{link}\n",
            inviter=ctx.actor.label or ctx.tenant.name,
            organization=ctx.tenant.name,
            role=translate(locale, role),
            link=link,
            expires=format_moment(expires_at, locale, ctx.tenant.zone, "long"),
        ),
        zone=ctx.tenant.timezone,
    )


async def list_invitations(ctx: TenantContext) -> list[Invitation]:
    """Pending invitations (not accepted, not revoked; expired ones included), newest first."""
    ctx.require(Permission.MEMBERS_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"""SELECT {_INVITATION_COLUMNS}
               FROM invitation WHERE tenant_id = $1 AND accepted_at IS NULL
                 AND revoked_at IS NULL
               ORDER BY created_at DESC""",  # noqa: S608 - constant clauses
            ctx.tenant_id,
        )
    return [_invitation(row) for row in rows]


async def get_invitation(ctx: TenantContext, invitation_id: UUID | str) -> Invitation:
    """One invitation, whatever its status; `NotFound` for ids not of this tenant."""
    ctx.require(Permission.MEMBERS_READ)
    async with tenant_transaction(ctx):
        return await access_invitation(ctx, invitation_id, for_update=False)


async def invite(ctx: TenantContext, email: str, role: str, settings: Settings) -> UUID:
    """Invite `email` with `role`; mails a link valid 7 days. Members and pending
    invitations of the same address (in any letter case) are a `Conflict`."""
    ctx.require(Permission.MEMBERS_INVITE)
    email = clean_email(email)
    role = clean_choice(role, ROLES, "role")
    if role == Role.OWNER and not ctx.can(Permission.OWNERS_MANAGE):
        raise Forbidden("Only an owner can appoint or change an owner.")
    token = new_token()
    invitation_id = uuid4()
    async with tenant_transaction(ctx):
        existing = await fetch(
            """SELECT 1 FROM membership m JOIN user_account u ON u.id = m.user_id
               WHERE m.tenant_id = $1 AND lower(u.email) = lower($2)""",
            ctx.tenant_id,
            email,
        )
        if existing:
            raise Conflict("This person is already a member.", field="email")
        # An expired invitation of the same address makes way for the new one.
        await execute(
            """UPDATE invitation SET revoked_at = now() WHERE tenant_id = $1
               AND lower(email) = lower($2) AND accepted_at IS NULL AND revoked_at IS NULL
               AND expires_at < now()""",
            ctx.tenant_id,
            email,
        )
        try:
            inserted = await fetch(
                """INSERT INTO invitation (tenant_id, id, email, role, token_hash, invited_by,
                       expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)
                   RETURNING expires_at""",
                ctx.tenant_id,
                invitation_id,
                email,
                role,
                token_digest(token),
                ctx.actor.user_id,
                INVITATION_TTL,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "An invitation is already pending for this address.", field="email"
            ) from None
        await audit.record(
            ctx, "member.invited", "invitation", invitation_id, email=email, role=role
        )
        await _mail_invitation(
            ctx,
            email,
            role,
            token,
            settings,
            ctx.tenant.default_locale,
            inserted[0]["expires_at"],
        )
    return invitation_id


async def resend_invitation(
    ctx: TenantContext, invitation_id: UUID | str, settings: Settings
) -> None:
    """Send a fresh link (the old one stops working) and extend the expiry."""
    ctx.require(Permission.MEMBERS_INVITE)
    token = new_token()
    async with tenant_transaction(ctx):
        invitation = await access_invitation(ctx, invitation_id)
        if invitation.accepted_at or invitation.revoked_at:
            raise Conflict("This invitation is no longer pending.")
        updated = await fetch(
            """UPDATE invitation SET token_hash = $3, expires_at = now() + $4::interval,
                   last_sent_at = now(), send_count = send_count + 1
               WHERE tenant_id = $1 AND id = $2
               RETURNING expires_at""",
            ctx.tenant_id,
            invitation.id,
            token_digest(token),
            INVITATION_TTL,
        )
        await audit.record(
            ctx, "invitation.resent", "invitation", invitation.id, email=invitation.email
        )
        await _mail_invitation(
            ctx,
            invitation.email,
            invitation.role,
            token,
            settings,
            ctx.tenant.default_locale,
            updated[0]["expires_at"],
        )


async def revoke_invitation(ctx: TenantContext, invitation_id: UUID | str) -> None:
    """Withdraw a pending invitation; its link stops working."""
    ctx.require(Permission.MEMBERS_INVITE)
    async with tenant_transaction(ctx):
        invitation = await access_invitation(ctx, invitation_id)
        if invitation.accepted_at or invitation.revoked_at:
            raise Conflict("This invitation is no longer pending.")
        await execute(
            "UPDATE invitation SET revoked_at = now() WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            invitation.id,
        )
        await audit.record(
            ctx, "invitation.revoked", "invitation", invitation.id, email=invitation.email
        )


# --- the invitee's side ----------------------------------------------------------------


@dataclass(frozen=True)
class PendingInvitation:
    """An invitation as shown to the person who received it."""

    tenant_id: UUID
    tenant_slug: str
    tenant_name: str
    invitation_id: UUID
    email: str
    role: str
    account_exists: bool


async def _pending_by_token(slug: str, token: str) -> tuple[TenantSummary, Invitation]:
    """(organization, invitation) for a link, inside the caller's transaction."""
    try:
        slug = clean_slug(slug)
    except Invalid:  # no organization has it: the link is as dead as a revoked one
        raise Gone("This invitation link is not valid any more.") from None
    orgs = await fetch(SUMMARY_SQL + " WHERE slug = $1", slug)
    if not orgs or orgs[0]["status"] in ("closed", "suspended"):
        raise Gone("This invitation link is not valid any more.")
    org = summary(orgs[0])
    await dangerously_switch_tenant(org.id)
    rows = await fetch(
        f"""SELECT {_INVITATION_COLUMNS} FROM invitation
           WHERE tenant_id = $1 AND token_hash = $2 FOR UPDATE""",  # noqa: S608 - constant
        org.id,
        token_digest(token),
    )
    if not rows or rows[0]["accepted_at"] or rows[0]["revoked_at"]:
        raise Gone("This invitation link is not valid any more.")
    if rows[0]["expired"]:
        raise Gone("This invitation has expired. Ask for a new one.")
    return org, _invitation(rows[0])


async def pending_invitation(slug: str, token: str) -> PendingInvitation:
    """What an invitation link offers, or `Gone` for expired, used or revoked links."""
    async with global_transaction():
        org, invitation = await _pending_by_token(slug, token)
        accounts = await fetch(
            "SELECT 1 FROM user_account WHERE lower(email) = lower($1)", invitation.email
        )
    return PendingInvitation(
        tenant_id=org.id,
        tenant_slug=org.slug,
        tenant_name=org.name,
        invitation_id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        account_exists=bool(accounts),
    )


@dataclass(frozen=True)
class InviteeAccountForm:
    """What a signed-out invitee typed to create their account, unchecked, and the language
    given when they chose none: `accept_invitation` checks it once the link allows it."""

    name: str | None
    password: str | None
    password_confirm: str | None
    locale: str | None
    default_locale: str


async def accept_invitation(
    slug: str,
    token: str,
    user: UserAccount | None,
    typed: InviteeAccountForm | None,
    actor: Actor,
) -> tuple[UserAccount, str]:
    """Join the organization, creating the account when the invitee has none.

    A signed-in person accepts as themselves, and only when their email is the invited one
    (in any letter case); a signed-out person creates the account of the invited email from
    what they `typed`. The errors come in this order: `Gone` for a link that is no longer
    valid, then `Conflict` when the invited address already has an account (the form offers
    to sign in), then `Invalid` for the new account's details, checked by
    `accounts.check_new_account`. Returns (account, slug).
    """
    async with global_transaction():
        org, invitation = await _pending_by_token(slug, token)
        if user is not None:
            if user.email.lower() != invitation.email.lower():
                raise Invalid(
                    "This invitation was sent to another email address. "
                    "Sign out, then open the link again."
                )
            account = user
        else:
            if typed is None:
                raise Invalid("Sign in with the invited email address to accept.")
            # Said here, without a field: the form offers to sign in, not to type an email.
            existing = await fetch(
                "SELECT 1 FROM user_account WHERE lower(email) = lower($1)", invitation.email
            )
            if existing:
                raise Conflict("An account already exists for this address.")
            # The invitation names the address; accepting it asks no terms.
            new_account = check_new_account(
                name=typed.name,
                password=typed.password,
                password_confirm=typed.password_confirm,
                locale=typed.locale,
                default_locale=typed.default_locale,
            )
            account = await insert_account(
                invitation.email,
                new_account.name,
                new_account.password,
                new_account.locale,
                verified=True,
            )
        await dangerously_switch_tenant(org.id, account.id)
        membership_id = uuid4()
        try:
            await execute(
                "INSERT INTO membership (tenant_id, id, user_id, role) VALUES ($1, $2, $3, $4)",
                org.id,
                membership_id,
                account.id,
                invitation.role,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("You are already a member of this organization.") from None
        await execute(
            """UPDATE invitation SET accepted_at = now(), accepted_by = $3
               WHERE tenant_id = $1 AND id = $2""",
            org.id,
            invitation.id,
            account.id,
        )
        ctx = TenantContext(
            tenant=org,
            actor=Actor(
                kind="user",
                user_id=account.id,
                label=account.email,
                ip=actor.ip,
                user_agent=actor.user_agent,
            ),
        )
        await audit.record(
            ctx,
            "invitation.accepted",
            "membership",
            membership_id,
            email=account.email,
            role=invitation.role,
        )
    return account, org.slug
