"""SAML sign-in through an organization's connection, `/sso/{slug}/saml/{id}/…`.

`start` sends the browser to the IdP with an AuthnRequest, the flow (request id, where to go
next, test or not) kept in its session under a random RelayState. `metadata` is the SP's
metadata, public and stable: its URL is the SP's entity id. `acs` is the assertion consumer
service, in two steps because the IdP's POST is cross-site and the session cookie is
SameSite=Lax, so the browser does not send it with that POST:

1. `POST acs` (exempt from CSRF: the SAML checks are its protection) keeps the response in
   the database under a random handle and answers 303 to `GET acs?received=<handle>`;
2. that GET is a top-level navigation, which carries the Lax cookie: the response is taken
   (once), checked against the session's flow (InResponseTo), then the sign-in completes or
   is refused through `api.routes.sso_signin`.

A response replayed, or posted by someone else for this browser, finds no flow in this
browser's session (unsolicited: refused unless the connection allows IdP-initiated sign-in)
and an assertion id already in the replay cache. With `test=1`, an administrator
(`org:sso:manage`) runs the real flow to test a connection, enabled or not: the result page
shows what the IdP sent, or why it was refused, and signs nobody in.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from api.routes.sso_signin import (
    complete_sign_in,
    connection_test_page,
    connection_tester,
    refuse_sign_in,
)
from core.errors import NotFound, TooManyRequests, UserError
from core.ids import uuid_or_404
from core.settings import get_settings
from sso import saml
from sso.connections import SignInConnection, connection_by_slug
from sso.errors import SignInRefused
from tenants.context import TenantSummary
from tenants.organizations import system_context, tenant_by_slug
from web.pages import client_ip, safe_next, session_of

#: Session key of the SAML flows under way: RelayState → flow.
FLOWS = "saml_flows"
#: How long a flow waits for the IdP's answer.
FLOW_LIFETIME = timedelta(minutes=10)
#: Responses one client address may post to ACSs in a minute.
ACS_POSTS_PER_MINUTE = 120
#: Redirected GETs one client address may make to ACSs in a minute.
ACS_GETS_PER_MINUTE = 120
#: What a SAMLResponse is made of: base64, possibly wrapped in lines.
_BASE64 = re.compile(r"[A-Za-z0-9+/=\r\n\t ]+")
#: Flows kept per session at most (a person may open a few tabs; no more grows the session).
MAX_FLOWS = 5


def urls(tenant: TenantSummary, connection_id: Any) -> saml.ServiceProviderUrls:
    """The SP's URLs for this connection (entity id = metadata URL, ACS, start)."""
    return saml.sp_urls(get_settings().base_url, tenant.slug, connection_id)


async def _connection(
    slug: str, connection_id: str, *, testing: bool
) -> tuple[TenantSummary, SignInConnection, saml.SamlConnection]:
    tenant, signing_in = await connection_by_slug(slug, connection_id, allow_disabled=testing)
    return tenant, signing_in, saml.saml_connection(signing_in.connection)


@get("/sso/{slug:str}/saml/{connection_id:str}/metadata", name="sso_saml_metadata")
async def saml_metadata(slug: FromPath[str], connection_id: FromPath[str]) -> Response[str]:
    """The SP's metadata for the IdP (public: URLs and a certificate), at its entity id."""
    tenant, _, connection = await _connection(slug, connection_id, testing=True)
    xml = saml.sp_metadata(connection, urls(tenant, connection.id))
    return Response(
        xml,
        media_type="application/samlmetadata+xml",
        headers={"Content-Disposition": f'inline; filename="jalon-sp-{connection.id}.xml"'},
    )


@get("/sso/{slug:str}/saml/{connection_id:str}/start", name="sso_saml_start")
async def saml_start(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    connection_id: FromPath[str],
    next: FromQuery[str | None] = None,
    test: FromQuery[str | None] = None,
) -> Response[Any]:
    """Send the browser to the connection's IdP with an AuthnRequest."""
    testing = test == "1"
    tenant, _, connection = await _connection(slug, connection_id, testing=testing)
    if testing:
        await connection_tester(request, tenant)
    relay_state = secrets.token_urlsafe(24)
    try:
        authn = saml.authn_request(connection, urls(tenant, connection.id), relay_state)
    except SignInRefused as refused:
        return await refuse_sign_in(
            request, tenant.id, connection.id, refused.reason, refused.detail
        )
    now = datetime.now(UTC)
    session = session_of(request)
    flows = {
        key: flow
        for key, flow in dict(session.get(FLOWS) or {}).items()
        if datetime.fromisoformat(flow["expires_at"]) > now
    }
    while len(flows) >= MAX_FLOWS:
        flows.pop(min(flows, key=lambda key: flows[key]["expires_at"]))
    flows[relay_state] = {
        "tenant_id": str(tenant.id),
        "connection_id": str(connection.id),
        "request_id": authn.request_id,
        "next": safe_next(next, f"/o/{tenant.slug}/"),
        "test": testing,
        "expires_at": (now + FLOW_LIFETIME).isoformat(),
    }
    session[FLOWS] = flows
    return Redirect(path=authn.redirect_url, status_code=303)


@post(
    "/sso/{slug:str}/saml/{connection_id:str}/acs",
    name="sso_saml_acs_post",
    opt={"exclude_from_csrf": True},
    status_code=303,
)
async def saml_acs_post(
    request: Request[Any, Any, Any], slug: FromPath[str], connection_id: FromPath[str]
) -> Redirect:
    """Receive the IdP's POST, keep it, and bring the browser back with its session."""
    tenant, _, connection = await _connection(slug, connection_id, testing=True)
    # Anyone may post here: a bound on what one address can make the database hold.
    received = await request.app.state.limiter.hit(f"saml-acs:{client_ip(request)}", 60)
    if received > ACS_POSTS_PER_MINUTE:
        raise TooManyRequests("Too many requests. Wait a moment and try again.")
    form = await request.form()
    response = form.get("SAMLResponse")
    relay_state = form.get("RelayState")
    if not isinstance(response, str) or not response:
        raise NotFound()
    # What the database could not hold (a NUL) or no IdP sends is refused before it is kept.
    if not _BASE64.fullmatch(response):
        raise UserError("The SAMLResponse is not base64.")
    if isinstance(relay_state, str) and not relay_state.isprintable():
        raise UserError("The RelayState holds control characters.")
    handle = await saml.keep_received_response(
        system_context(tenant, "sso"),
        connection.id,
        response,
        relay_state if isinstance(relay_state, str) else "",
        datetime.now(UTC),
    )
    return Redirect(
        path=f"/sso/{tenant.slug}/saml/{connection.id}/acs?received={handle}", status_code=303
    )


@get("/sso/{slug:str}/saml/{connection_id:str}/acs", name="sso_saml_acs")
async def saml_acs(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    connection_id: FromPath[str],
    received: FromQuery[str | None] = None,
) -> Response[Any]:
    """Check the response the ACS received against this browser's flow; sign in, or say why
    not."""
    handle = uuid_or_404(received or "")
    tenant = await tenant_by_slug(slug)
    ctx = system_context(tenant, "sso")
    wanted = uuid_or_404(connection_id)
    now = datetime.now(UTC)
    asked = await request.app.state.limiter.hit(f"saml-acs-get:{client_ip(request)}", 60)
    if asked > ACS_GETS_PER_MINUTE:
        raise TooManyRequests("Too many requests. Wait a moment and try again.")
    try:
        kept = await saml.take_received_response(ctx, wanted, handle, now)
    except SignInRefused as refused:
        # Audited only when this browser started a sign-in through this connection: an
        # anonymous link to nothing must not fill the organization's log.
        return await refuse_sign_in(
            request,
            tenant.id,
            wanted,
            refused.reason,
            refused.detail,
            audited=_has_flow(request, tenant, wanted),
        )
    flow = _take_flow(request, kept.relay_state, tenant, wanted, now)
    testing = bool(flow and flow["test"])
    try:
        _, signing_in, connection = await _connection(slug, connection_id, testing=testing)
    except NotFound:
        return await refuse_sign_in(
            request, tenant.id, wanted, "saml.connection", "the connection is disabled"
        )
    try:
        identity = await saml.consume_response(
            ctx,
            signing_in,
            urls(tenant, connection.id),
            kept.saml_response,
            flow["request_id"] if flow else None,
            now,
        )
    except SignInRefused as refused:
        if testing:
            return await connection_test_page(request, tenant, signing_in, refused=refused)
        return await refuse_sign_in(
            request, tenant.id, connection.id, refused.reason, refused.detail
        )
    if testing:
        return await connection_test_page(request, tenant, signing_in, identity=identity)
    # IdP-initiated: the IdP's RelayState may name a page here
    next_path = flow["next"] if flow else safe_next(kept.relay_state, f"/o/{tenant.slug}/")
    return await complete_sign_in(request, identity, next_path)


def _has_flow(request: Request[Any, Any, Any], tenant: TenantSummary, connection_id: Any) -> bool:
    """Whether this browser's session holds a SAML flow for this connection."""
    flows = dict(session_of(request).get(FLOWS) or {})
    return any(
        flow.get("tenant_id") == str(tenant.id) and flow.get("connection_id") == str(connection_id)
        for flow in flows.values()
    )


def _take_flow(
    request: Request[Any, Any, Any],
    relay_state: str,
    tenant: TenantSummary,
    connection_id: Any,
    now: datetime,
) -> dict[str, Any] | None:
    """This browser's flow for `relay_state`, taken out of its session (once), if it is for
    this connection and still fresh."""
    session = session_of(request)
    flows = dict(session.get(FLOWS) or {})
    flow = flows.pop(relay_state, None) if relay_state else None
    if flow is None:
        return None
    session[FLOWS] = flows
    if (
        flow["tenant_id"] != str(tenant.id)
        or flow["connection_id"] != str(connection_id)
        or datetime.fromisoformat(flow["expires_at"]) <= now
    ):
        return None
    return dict(flow)


handlers = [saml_metadata, saml_start, saml_acs_post, saml_acs]
