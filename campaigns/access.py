"""Who may act on campaigns, and ids from outside."""

from __future__ import annotations

from uuid import UUID

from core.errors import Forbidden, Unauthenticated
from tenants.context import TenantContext
from tenants.permissions import Permission


def require_member(ctx: TenantContext, permission: Permission) -> None:
    """`Forbidden` unless a member of the organization (someone with a role) holding
    `permission` acts: the console's services on campaigns and learners are a people's matter,
    so API tokens and participants are refused whatever they hold. (The JSON API reads
    campaigns and learners through `campaigns.campaign_listing` and
    `campaigns.learner_listing`, which check a token's scopes.)"""
    if ctx.role is None:
        raise Forbidden()
    ctx.require(permission)


def require_reader(ctx: TenantContext) -> None:
    """Campaigns, their statistics and target profiles are read by every member of the
    organization, whatever their role; API tokens and participants are refused."""
    require_member(ctx, Permission.CAMPAIGNS_READ)


def require_manager(ctx: TenantContext) -> None:
    """Campaigns and target profiles are created and changed by the organization's owners and
    admins (`org:campaigns:manage`); plain members, API tokens and participants are refused."""
    require_member(ctx, Permission.CAMPAIGNS_MANAGE)


def participant_id(ctx: TenantContext) -> UUID:
    """The user id of a signed-in participant; `Unauthenticated` for anything else."""
    if ctx.actor.kind != "user" or ctx.actor.user_id is None:
        raise Unauthenticated("Sign in to continue.")
    return ctx.actor.user_id
