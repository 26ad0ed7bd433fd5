"""Who may act on campaigns, and ids from outside."""

from __future__ import annotations

from uuid import UUID

from core.errors import Forbidden, Unauthenticated
from tenants.context import TenantContext
from tenants.permissions import Permission


def _require_member(ctx: TenantContext, permission: Permission) -> None:
    # The console's services are a people's matter: a context without a role is refused.
    # The JSON API reads campaigns through `campaigns.listing`, which checks token scopes.
    if ctx.role is None:
        raise Forbidden()
    ctx.require(permission)


def require_reader(ctx: TenantContext) -> None:
    """Campaigns, their statistics and target profiles are read by every member of the
    organization, whatever their role; API tokens and participants are refused."""
    _require_member(ctx, Permission.CAMPAIGNS_READ)


def require_manager(ctx: TenantContext) -> None:
    """Campaigns and target profiles are created and changed by the organization's owners and
    admins (`org:campaigns:manage`); plain members, API tokens and participants are refused."""
    _require_member(ctx, Permission.CAMPAIGNS_MANAGE)


def participant_id(ctx: TenantContext) -> UUID:
    """The user id of a signed-in participant; `Unauthenticated` for anything else."""
    if ctx.actor.kind != "user" or ctx.actor.user_id is None:
        raise Unauthenticated("Sign in to continue.")
    return ctx.actor.user_id
