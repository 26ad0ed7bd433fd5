"""The JSON API, `/api/v1`, authenticated by tenant API tokens (`Authorization: Bearer …`).

A token belongs to one organization (`jalon_<tenant id hex>_<secret>`) and carries scopes;
every handler declares the scope it needs. Errors are `{"error": {"status", "message"}}`,
in the language of `Accept-Language`. Ids of another organization answer 404, like ids that
do not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody, KwargDefinition, QueryParameter
from litestar.routes import HTTPRoute

from campaigns import campaign_listing, learner_listing
from campaigns.campaign_fields import STATUSES as CAMPAIGN_STATUSES
from campaigns.campaign_listing import PARTICIPATION_STATUSES
from campaigns.learner_rows import GROUP_MAX_LENGTH, NAME_MAX_LENGTH
from campaigns.paging import DEFAULT_LIMIT, MAX_LIMIT
from core.errors import Forbidden, Invalid, Unauthenticated
from core.settings import get_settings
from tenants import audit, invitations, members
from tenants.context import TenantContext
from tenants.members import MEMBER_PAGE_MAX
from tenants.organizations import get_organization
from tenants.permissions import Permission, Role
from tenants.tokens import token_context
from web.guards import Ctx
from web.pages import client_ip


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


#: The roles a member can have (another is a 422 naming `role`).
RoleName = Annotated[str, KwargDefinition(schema_extra={"enum": [role.value for role in Role]})]


class RoleChange(msgspec.Struct):
    role: RoleName


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
    email: Annotated[str, KwargDefinition(schema_extra={"examples": ["new.member@example.org"]})]
    role: RoleName = "member"


class CreatedInvitation(msgspec.Struct):
    id: UUID


class Campaign(msgspec.Struct):
    id: UUID
    name: str
    #: assessment or profiles_collection
    type: str
    #: the code participants type, or the end of their link `/c/<code>`
    code: str
    #: draft, active, closed or archived
    status: str
    #: codes of the competences assessed (the frozen target profile)
    competences: list[str]
    locales: list[str]
    opens_at: datetime | None
    closes_at: datetime | None
    created_at: datetime
    closed_at: datetime | None
    archived_at: datetime | None
    #: learners who started (several attempts count once)
    started: int
    #: learners who finished a test, shared or not
    completed: int
    #: learners who shared their results with the organization
    shared: int


class CampaignPage(msgspec.Struct):
    items: list[Campaign]
    next_cursor: str | None
    previous_cursor: str | None


class Participation(msgspec.Struct):
    id: UUID
    campaign_id: UUID
    learner_id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    attempt: int
    status: Annotated[
        str, msgspec.Meta(description="started, completed (finished, not shared) or shared")
    ]
    started_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    level: Annotated[
        int | None,
        msgspec.Meta(description="The global level, 0 to 8; null until the learner shares."),
    ]
    score: Annotated[
        int | None,
        msgspec.Meta(description="The score in points; null until the learner shares."),
    ]


class ParticipationPage(msgspec.Struct):
    items: list[Participation]
    next_cursor: str | None
    previous_cursor: str | None


class CompetenceLevel(msgspec.Struct):
    #: the competence's code in the framework, e.g. 1.1
    code: str
    #: 0 to 8
    level: int


class SharedResult(msgspec.Struct):
    participation_id: UUID
    campaign_id: UUID
    learner_id: UUID
    name: str
    email: str | None
    external_id: str | None
    attempt: int
    completed_at: datetime
    shared_at: datetime
    #: the global level, 0 to 8
    level: int
    score: int
    competences: list[CompetenceLevel]


class SharedResultPage(msgspec.Struct):
    items: list[SharedResult]
    next_cursor: str | None
    previous_cursor: str | None


class Learner(msgspec.Struct):
    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    created_at: datetime
    #: how many participations (attempts, every campaign) they have
    participations: int


class LearnerPage(msgspec.Struct):
    items: list[Learner]
    next_cursor: str | None
    previous_cursor: str | None


class LearnerParticipation(msgspec.Struct):
    id: UUID
    campaign_id: UUID
    campaign_name: str
    attempt: int
    status: str
    started_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    #: null until shared
    level: int | None


class LearnerDetail(msgspec.Struct):
    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    created_at: datetime
    participations: list[LearnerParticipation]


class AuditEvent(msgspec.Struct):
    id: UUID
    occurred_at: datetime
    #: user, api_token, staff (Jalon's staff, on the organization's behalf) or system
    actor_kind: str
    #: the actor's email or token name as it was then
    actor_label: str
    #: what happened, e.g. member.invited, campaign.closed, token.created
    action: str
    #: the kind of object acted on (membership, campaign, api_token…) and its id
    target_type: str
    target_id: str
    #: where the change came from, when known
    ip: str | None
    user_agent: str
    #: what the action recorded: changed values, emails, roles…
    details: dict[str, Any]


class AuditEventPage(msgspec.Struct):
    items: list[AuditEvent]
    next_cursor: str | None


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
    400: _error(
        "Malformed request: a parameter or body of the wrong type, or not valid JSON; "
        "`error.field` names the field when one is at fault"
    ),
    401: _error("Missing, malformed, expired or revoked token"),
    403: _error("The token does not carry the scope this endpoint needs"),
    404: _error("No such object in the token's organization"),
    422: _error("Invalid input: `error.field` names the field"),
}
#: The errors of endpoints that change something that may have changed meanwhile.
CONFLICTS: dict[int, ResponseSpec] = {
    **ERRORS,
    409: _error(
        "The change clashes with the current state (already a member or invited, "
        "no longer pending, the last owner)"
    ),
}

# The bounds below are documented in the schema (`schema_extra`) and checked by the services,
# which refuse a value out of them with a 422 naming the field, in the caller's language.
#: A page size: the API's listings take 1 to `MAX_LIMIT` items, members 1 to 200.
PageLimit = Annotated[int, QueryParameter(schema_extra={"minimum": 1, "maximum": MAX_LIMIT})]
MemberPageLimit = Annotated[
    int, QueryParameter(schema_extra={"minimum": 1, "maximum": MEMBER_PAGE_MAX})
]
#: Search texts and group names: at most what a learner's name or group can be.
Search = Annotated[str | None, QueryParameter(schema_extra={"maxLength": NAME_MAX_LENGTH})]
Group = Annotated[str | None, QueryParameter(schema_extra={"maxLength": GROUP_MAX_LENGTH})]
#: The statuses campaigns and participations are filtered by.
CampaignStatus = Annotated[
    str | None, QueryParameter(schema_extra={"enum": list(CAMPAIGN_STATUSES)})
]
ParticipationStatus = Annotated[
    str | None, QueryParameter(schema_extra={"enum": list(PARTICIPATION_STATUSES)})
]
#: The audit log's filters: as the console's audit page takes them.
AuditPageLimit = Annotated[
    int, QueryParameter(schema_extra={"minimum": 1, "maximum": audit.PAGE_MAX})
]
AuditAction = Annotated[str | None, QueryParameter(schema_extra={"maxLength": 100})]
AuditActor = Annotated[str | None, QueryParameter(schema_extra={"maxLength": 200})]
Day = Annotated[str | None, QueryParameter(schema_extra={"format": "date"})]


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
    return _convert(await get_organization(ctx), Organization)


@get("/members", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def list_members(
    ctx: Ctx, cursor: FromQuery[str | None] = None, limit: MemberPageLimit = 50
) -> MemberPage:
    """Members in joining order, one page of `limit` (1 to 200) at a time: pass `next_cursor`
    back as `cursor` for the next page; it is null on the last one."""
    return _convert(await members.list_members(ctx, cursor, limit), MemberPage)


@get("/members/{membership_id:str}", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def get_member(ctx: Ctx, membership_id: FromPath[str]) -> Member:
    """One member."""
    return _convert(await members.get_member(ctx, membership_id), Member)


@patch(
    "/members/{membership_id:str}",
    opt={"permission": Permission.MEMBERS_UPDATE},
    responses=CONFLICTS,
)
async def change_role(ctx: Ctx, membership_id: FromPath[str], data: JSONBody[RoleChange]) -> Member:
    """Give a member another role (owners are managed in the console)."""
    await members.change_role(ctx, membership_id, data.role)
    return _convert(await members.get_member(ctx, membership_id), Member)


@delete(
    "/members/{membership_id:str}",
    opt={"permission": Permission.MEMBERS_REMOVE},
    responses=CONFLICTS,
)
async def remove_member(ctx: Ctx, membership_id: FromPath[str]) -> None:
    """Remove a member; the last owner stays."""
    await members.remove_member(ctx, membership_id)


@get("/invitations", opt={"permission": Permission.MEMBERS_READ}, responses=ERRORS)
async def list_invitations(ctx: Ctx) -> list[Invitation]:
    """Invitations not yet accepted or revoked (expired ones included), newest first."""
    return [
        _convert(invitation, Invitation) for invitation in await invitations.list_invitations(ctx)
    ]


@get(
    "/invitations/{invitation_id:str}",
    opt={"permission": Permission.MEMBERS_READ},
    responses=ERRORS,
)
async def get_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> Invitation:
    """One invitation, whatever its status."""
    return _convert(await invitations.get_invitation(ctx, invitation_id), Invitation)


@post("/invitations", opt={"permission": Permission.MEMBERS_INVITE}, responses=CONFLICTS)
async def create_invitation(ctx: Ctx, data: JSONBody[NewInvitation]) -> CreatedInvitation:
    """Invite someone by email; they receive a link valid 7 days. 409 when they are already a
    member or already invited (in any letter case)."""
    invitation_id = await invitations.invite(ctx, data.email, data.role, get_settings())
    return CreatedInvitation(invitation_id)


@post(
    "/invitations/{invitation_id:str}/resend",
    opt={"permission": Permission.MEMBERS_INVITE},
    responses=CONFLICTS,
    status_code=204,
)
async def resend_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> None:
    """Mail a fresh link, valid 7 days; the previous link stops working."""
    await invitations.resend_invitation(ctx, invitation_id, get_settings())


@delete(
    "/invitations/{invitation_id:str}",
    opt={"permission": Permission.MEMBERS_INVITE},
    responses=CONFLICTS,
)
async def revoke_invitation(ctx: Ctx, invitation_id: FromPath[str]) -> None:
    """Revoke a pending invitation; its link stops working."""
    await invitations.revoke_invitation(ctx, invitation_id)


S = TypeVar("S")


def _convert(value: Any, kind: type[S]) -> S:
    """The response model `kind` built from what a service returned (a dataclass or struct,
    with the pages, lists and objects inside it): the one way handlers answer, so the models
    are never copied field by field."""
    return msgspec.convert(value, kind, from_attributes=True)


CAMPAIGNS_READ = {"permission": Permission.CAMPAIGNS_READ}
LEARNERS_READ = {"permission": Permission.LEARNERS_READ}
RESULTS_READ = {"permission": Permission.RESULTS_READ}


@get("/campaigns", opt=CAMPAIGNS_READ, responses=ERRORS, tags=["campaigns"])
async def list_campaigns(
    ctx: Ctx,
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    status: CampaignStatus = None,
) -> CampaignPage:
    """Campaigns, newest first, each with how many learners started, completed and shared;
    `status` keeps draft, active, closed or archived ones.

    Every listing of campaigns, participations, results and learners is paged alike: `limit`
    items (1 to 100, 50 by default) at a time; pass `next_cursor` back as `cursor` for the
    next page (null on the last) or `previous_cursor` for the one before (null on the first),
    with the same filters."""
    page = await campaign_listing.list_campaigns_page(ctx, cursor, limit, status=status)
    return _convert(page, CampaignPage)


@get("/campaigns/{campaign_id:str}", opt=CAMPAIGNS_READ, responses=ERRORS, tags=["campaigns"])
async def get_campaign(ctx: Ctx, campaign_id: FromPath[str]) -> Campaign:
    """One campaign with its participation funnel."""
    return _convert(await campaign_listing.campaign_summary(ctx, campaign_id), Campaign)


@get(
    "/campaigns/{campaign_id:str}/participations",
    opt=LEARNERS_READ,
    responses=ERRORS,
    tags=["campaigns"],
)
async def list_participations(
    ctx: Ctx,
    campaign_id: FromPath[str],
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    status: ParticipationStatus = None,
    search: Search = None,
    group: Group = None,
) -> ParticipationPage:
    """A campaign's participations, newest first (needs `org:learners:read`: they name
    people). `status`: started, completed (finished, not shared) or shared; `search`: part of
    the learner's name, email or external id; `group`: one of the learner's groups. `level`
    and `score` stay null until the learner shares their results."""
    page = await campaign_listing.list_participations(
        ctx, campaign_id, cursor, limit, status=status, search=search, group=group
    )
    return _convert(page, ParticipationPage)


@get(
    "/campaigns/{campaign_id:str}/results",
    opt=RESULTS_READ,
    responses=ERRORS,
    tags=["campaigns"],
)
async def list_results(
    ctx: Ctx,
    campaign_id: FromPath[str],
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    search: Search = None,
    group: Group = None,
) -> SharedResultPage:
    """The results learners shared with the organization, most recently shared first, with
    each competence's level (needs `org:results:read`). Results not shared never appear."""
    page = await campaign_listing.list_shared_results(
        ctx, campaign_id, cursor, limit, search=search, group=group
    )
    return _convert(page, SharedResultPage)


@get("/learners", opt=LEARNERS_READ, responses=ERRORS, tags=["learners"])
async def list_learners(
    ctx: Ctx,
    cursor: FromQuery[str | None] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    search: Search = None,
    group: Group = None,
) -> LearnerPage:
    """The people who took part in the organization's campaigns, newest first. `search`:
    part of a name, email or external id; `group`: one of their groups."""
    page = await learner_listing.list_learners(
        ctx, cursor, limit, search=search, group=group, order="newest"
    )
    return _convert(page, LearnerPage)


@get("/learners/{learner_id:str}", opt=LEARNERS_READ, responses=ERRORS, tags=["learners"])
async def get_learner(ctx: Ctx, learner_id: FromPath[str]) -> LearnerDetail:
    """One learner with every participation, newest first; levels only of shared ones."""
    return _convert(await learner_listing.get_learner(ctx, learner_id), LearnerDetail)


@get("/audit", opt={"permission": Permission.AUDIT_READ}, responses=ERRORS, tags=["audit"])
async def list_audit_events(
    ctx: Ctx,
    cursor: FromQuery[str | None] = None,
    limit: AuditPageLimit = audit.PAGE_SIZE,
    action: AuditAction = None,
    actor: AuditActor = None,
    since: Day = None,
    until: Day = None,
) -> AuditEventPage:
    """The organization's audit log, newest first: who changed what, when and from where.
    `action` keeps the events of one action (e.g. `member.invited`), `actor` those whose
    actor's email or token name contains it, `since` and `until` whole days (YYYY-MM-DD, in
    the organization's time zone, both included), like the console's audit page.

    `limit` events (1 to 100, 50 by default) at a time, forward only: pass `next_cursor`
    back as `cursor` for the next (older) page, with the same filters; it is null on the
    last one."""
    for name, day in (("since", since), ("until", until)):
        if day is not None and not day.strip():  # the console's form sends "" for no day
            raise Invalid("Enter a date as YYYY-MM-DD.", field=name)
    filters = audit.clean_filter(action, actor, since, until)
    page = await audit.list_events(ctx, filters, cursor, limit)
    return AuditEventPage(
        items=[_convert(event, AuditEvent) for event in page.events],
        next_cursor=page.next_cursor,
    )


def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
    """`OPTIONS` answers 204 with `Allow` naming every method of the path. (Litestar's own
    OPTIONS handler lists only the methods of the first handler registered on a path.)"""
    if request.method != "OPTIONS":
        return None
    template = request.scope.get("path_template")
    methods = sorted(
        {
            method
            for route in request.app.routes
            if isinstance(route, HTTPRoute) and route.path_format == template
            for method in route.methods
        }
    )
    return Response(None, status_code=204, headers={"Allow": ", ".join(methods)})


api_router = Router(
    path="/api/v1",
    guards=[bearer_token],
    before_request=answer_options,
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
        list_campaigns,
        get_campaign,
        list_participations,
        list_results,
        list_learners,
        get_learner,
        list_audit_events,
    ],
    security=[{"bearer": []}],
    tags=["organization"],
)

SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http", scheme="bearer", description="A tenant API token (jalon_…)."
    )
}
