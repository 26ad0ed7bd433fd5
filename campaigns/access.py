"""Who may act on campaigns, and ids from outside."""

from __future__ import annotations

from uuid import UUID

from core.errors import Forbidden, NotFound, Unauthenticated
from tenants.context import TenantContext
from tenants.permissions import Permission


def require_manager(ctx: TenantContext) -> None:
    """Campaigns and target profiles are managed by the organization's members, whatever
    their role (as in Pix Orga); API tokens and participants are refused.

    The one place to change once the permission enum has campaign permissions.
    """
    if ctx.role is None:
        raise Forbidden()
    ctx.require(Permission.ORGANIZATION_READ)


def participant_id(ctx: TenantContext) -> UUID:
    """The user id of a signed-in participant; `Unauthenticated` for anything else."""
    if ctx.actor.kind != "user" or ctx.actor.user_id is None:
        raise Unauthenticated("Sign in to continue.")
    return ctx.actor.user_id


def uuid_or_404(value: UUID | str) -> UUID:
    """`value` as a UUID; `NotFound` when it is not one (a mangled id is an unknown id)."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound() from None
