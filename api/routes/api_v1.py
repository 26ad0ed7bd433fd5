"""The JSON API, `/api/v1`, authenticated by tenant API tokens (`Authorization: Bearer …`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody

from api.guards import Ctx
from api.web import client_ip
from core.errors import Forbidden, Invalid, Unauthenticated
from core.settings import get_settings
from tenants import members
from tenants.context import TenantContext
from tenants.organizations import get_organization
from tenants.permissions import Permission
from tenants.tokens import token_context


class Organization(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    kind: str
    country: str
    default_locale: str
    timezone: str
    currency: str
    status: str
    siret: str | None
    vat_number: str | None
    parent_slug: str | None
    created_at: datetime


class Member(msgspec.Struct):
    id: UUID
    user_id: UUID
    email: str
    name: str
    role: str
    created_at: datetime


class MemberPage(msgspec.Struct):
    items: list[Member]
    next_cursor: str | None


class RoleChange(msgspec.Struct):
    role: str


class Invitation(msgspec.Struct):
    id: UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    expired: bool


class NewInvitation(msgspec.Struct):
    email: str
    role: str = "member"


async def bearer_token(connection: ASGIConnection[Any, Any, Any, Any],
                       handler: BaseRouteHandler) -> None:
    """Authenticate the token and check the handler's scope."""
    header = connection.headers.get("authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    ctx = await token_context(raw.strip(), client_ip(connection),
                              connection.headers.get("user-agent", ""))
    permission: Permission | None = handler.opt.get("permission")
    if permission is not None and not ctx.can(permission):
        raise Forbidden("This token does not have the required scope.")
    connection.scope["state"]["ctx"] = ctx  # type: ignore[typeddict-item]


def _ctx(request: Request[Any, Any, Any]) -> TenantContext:
    ctx: TenantContext = request.scope["state"]["ctx"]  # type: ignore[typeddict-item]
    return ctx


@get("/organization", opt={"permission": Permission.ORGANIZATION_READ})
async def organization(ctx: Ctx) -> Organization:
    """The organization the token belongs to."""
    row = await get_organization(ctx)
    return msgspec.convert(row, Organization, from_attributes=False, strict=False)


@get("/members", opt={"permission": Permission.MEMBERS_READ})
async def list_members(ctx: Ctx, cursor: FromQuery[str | None] = None,
                       limit: FromQuery[int] = 50) -> MemberPage:
    """Members, in a stable order, one page at a time (pass `next_cursor` back as `cursor`)."""
    if not 1 <= limit <= 200:
        raise Invalid("limit must be between 1 and 200.", field="limit")
    rows = sorted(await members.list_members(ctx), key=lambda row: str(row["id"]))
    if cursor:
        rows = [row for row in rows if str(row["id"]) > cursor]
    page = rows[:limit]
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return MemberPage([msgspec.convert(row, Member) for row in page], next_cursor)


@patch("/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_UPDATE})
async def change_role(ctx: Ctx, membership_id: FromPath[str], data: JSONBody[RoleChange]) -> None:
    """Give a member another role (owners are managed in the console)."""
    await members.change_role(ctx, membership_id, data.role)


@delete("/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_REMOVE})
async def remove_member(ctx: Ctx, membership_id: FromPath[str]) -> None:
    """Remove a member; the last owner stays."""
    await members.remove_member(ctx, membership_id)


@get("/invitations", opt={"permission": Permission.MEMBERS_READ})
async def list_invitations(ctx: Ctx) -> list[Invitation]:
    """Pending invitations."""
    return [msgspec.convert(row, Invitation) for row in await members.list_invitations(ctx)]


@post("/invitations", opt={"permission": Permission.MEMBERS_INVITE})
async def create_invitation(ctx: Ctx, data: JSONBody[NewInvitation]) -> dict[str, UUID]:
    """Invite someone by email; they receive a link valid 7 days."""
    invitation_id = await members.invite(ctx, data.email, data.role, get_settings())
    return {"id": invitation_id}


@delete("/invitations/{invitation_id:str}", opt={"permission": Permission.MEMBERS_INVITE})
async def revoke_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> None:
    """Revoke a pending invitation."""
    await members.revoke_invitation(ctx, invitation_id)


api_router = Router(
    path="/api/v1",
    guards=[bearer_token],
    dependencies={"ctx": Provide(_ctx, sync_to_thread=False)},
    route_handlers=[organization, list_members, change_role, remove_member, list_invitations,
                    create_invitation, revoke_invitation],
    security=[{"bearer": []}],
    tags=["organization"],
)

SECURITY_SCHEMES = {"bearer": SecurityScheme(type="http", scheme="bearer",
                                             description="A tenant API token (jalon_…).")}
