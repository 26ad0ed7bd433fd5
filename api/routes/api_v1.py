"""The JSON API, `/api/v1`, authenticated by tenant API tokens (`Authorization: Bearer …`).

A token belongs to one organization (`jalon_<tenant id hex>_<secret>`) and carries scopes;
every handler declares the scope it needs. Errors are `{"error": {"status", "message"}}`,
in the language of `Accept-Language`. Ids of another organization answer 404, like ids that
do not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Router, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody

from api.guards import Ctx
from api.web import client_ip
from core.errors import Forbidden, Unauthenticated
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
    #: pending, expired, accepted or revoked
    status: str


class NewInvitation(msgspec.Struct):
    email: str
    role: str = "member"


class CreatedInvitation(msgspec.Struct):
    id: UUID


class ErrorDetail(msgspec.Struct):
    status: int
    message: str
    field: str | None = None


class ApiError(msgspec.Struct):
    """The body of every error answer."""

    error: ErrorDetail


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ApiError, description=description)


#: The errors every endpoint may answer, documented once.
ERRORS: dict[int, ResponseSpec] = {
    401: _error("Missing, malformed, expired or revoked token"),
    403: _error("The token does not carry the scope this endpoint needs"),
    404: _error("No such object in the token's organization"),
    422: _error("Invalid input: `error.field` names the field"),
}


async def bearer_token(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Authenticate the token and check the handler's scope."""
    header = connection.headers.get("authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    ctx = await token_context(
        raw.strip(), client_ip(connection), connection.headers.get("user-agent", "")
    )
    permission: Permission | None = handler.opt.get("permission")
    if permission is not None and not ctx.can(permission):
        raise Forbidden("This token does not have the required scope.")
    connection.scope["state"]["ctx"] = ctx


def _ctx(request: Request[Any, Any, Any]) -> TenantContext:
    ctx: TenantContext = request.scope["state"]["ctx"]
    return ctx


@get("/organization", opt={"permission": Permission.ORGANIZATION_READ}, responses=ERRORS)
async def organization(ctx: Ctx) -> Organization:
    """The organization the token belongs to."""
    row = await get_organization(ctx)
    return msgspec.convert(row, Organization, from_attributes=False, strict=False)


@get("/members", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def list_members(
    ctx: Ctx, cursor: FromQuery[str | None] = None, limit: FromQuery[int] = 50
) -> MemberPage:
    """Members in joining order, one page of `limit` (1 to 200) at a time: pass `next_cursor`
    back as `cursor` for the next page; it is null on the last one."""
    page = await members.list_members_page(ctx, cursor, limit)
    return MemberPage([msgspec.convert(row, Member) for row in page.members], page.next_cursor)


@get("/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def get_member(ctx: Ctx, membership_id: FromPath[str]) -> Member:
    """One member."""
    return msgspec.convert(await members.get_member(ctx, membership_id), Member)


@patch(
    "/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_UPDATE}, responses=ERRORS
)
async def change_role(ctx: Ctx, membership_id: FromPath[str], data: JSONBody[RoleChange]) -> Member:
    """Give a member another role (owners are managed in the console)."""
    await members.change_role(ctx, membership_id, data.role)
    return msgspec.convert(await members.get_member(ctx, membership_id), Member)


@delete(
    "/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_REMOVE}, responses=ERRORS
)
async def remove_member(ctx: Ctx, membership_id: FromPath[str]) -> None:
    """Remove a member; the last owner stays."""
    await members.remove_member(ctx, membership_id)


@get("/invitations", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def list_invitations(ctx: Ctx) -> list[Invitation]:
    """Invitations not yet accepted or revoked (expired ones included), newest first."""
    return [msgspec.convert(row, Invitation) for row in await members.list_invitations(ctx)]


@get(
    "/invitations/{invitation_id:str}",
    opt={"permission": Permission.MEMBERS_READ},
    responses=ERRORS,
)
async def get_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> Invitation:
    """One invitation, whatever its status."""
    return msgspec.convert(await members.get_invitation(ctx, invitation_id), Invitation)


@post("/invitations", opt={"permission": Permission.MEMBERS_INVITE}, responses=ERRORS)
async def create_invitation(ctx: Ctx, data: JSONBody[NewInvitation]) -> CreatedInvitation:
    """Invite someone by email; they receive a link valid 7 days. 409 when they are already a
    member or already invited (in any letter case)."""
    invitation_id = await members.invite(ctx, data.email, data.role, get_settings())
    return CreatedInvitation(invitation_id)


@post(
    "/invitations/{invitation_id:str}/resend",
    opt={"permission": Permission.MEMBERS_INVITE},
    responses=ERRORS,
    status_code=204,
)
async def resend_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> None:
    """Mail a fresh link, valid 7 days; the previous link stops working."""
    await members.resend_invitation(ctx, invitation_id, get_settings())


@delete(
    "/invitations/{invitation_id:str}",
    opt={"permission": Permission.MEMBERS_INVITE},
    responses=ERRORS,
)
async def revoke_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> None:
    """Revoke a pending invitation; its link stops working."""
    await members.revoke_invitation(ctx, invitation_id)


api_router = Router(
    path="/api/v1",
    guards=[bearer_token],
    dependencies={"ctx": Provide(_ctx, sync_to_thread=False)},
    route_handlers=[
        organization,
        list_members,
        get_member,
        change_role,
        remove_member,
        list_invitations,
        get_invitation,
        create_invitation,
        resend_invitation,
        revoke_invitation,
    ],
    security=[{"bearer": []}],
    tags=["organization"],
)

SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http", scheme="bearer", description="A tenant API token (jalon_…)."
    )
}
