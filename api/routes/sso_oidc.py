"""OpenID Connect sign-in through an organization's connection, `/sso/{slug}/oidc/{id}/…`.

`start` sends the browser to the provider, with the flow (state, nonce, PKCE verifier, where
to go next) kept in its session; `callback` (the redirect URI registered at the provider)
finishes it: `sso.oidc.finish` checks everything, then the sign-in completes (or is refused)
through `api.routes.sso_signin`. With `test=1`, an administrator (`org:sso:manage`) runs the
real flow to test a connection, enabled or not: the callback shows what the provider sent,
or why it was refused, and signs nobody in.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from api.routes.sso_signin import (
    complete_sign_in,
    connection_test_page,
    connection_tester,
    refuse_sign_in,
)
from core.errors import NotFound
from core.settings import get_settings
from sso import oidc
from sso.connections import SignInConnection, connection_by_slug
from sso.errors import SignInRefused
from tenants.context import TenantSummary
from web.pages import safe_next, session_of


def callback_url(slug: str, connection_id: UUID) -> str:
    """The redirect URI to register at the provider for this connection."""
    return f"{get_settings().base_url}/sso/{slug}/oidc/{connection_id}/callback"


async def _connection(
    slug: str, connection_id: str, *, testing: bool
) -> tuple[TenantSummary, SignInConnection]:
    tenant, signing_in = await connection_by_slug(slug, connection_id, allow_disabled=testing)
    if signing_in.connection.protocol != "oidc":
        raise NotFound()
    return tenant, signing_in


@get("/sso/{slug:str}/oidc/{connection_id:str}/start", name="sso_oidc_start")
async def oidc_start(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    connection_id: FromPath[str],
    next: FromQuery[str | None] = None,
    test: FromQuery[str | None] = None,
) -> Redirect:
    """Send the browser to the connection's provider to sign in."""
    testing = test == "1"
    tenant, signing_in = await _connection(slug, connection_id, testing=testing)
    if testing:
        await connection_tester(request, tenant)
    connection = signing_in.connection
    url, flow = oidc.begin(
        connection,
        callback_url(tenant.slug, connection.id),
        safe_next(next, f"/o/{tenant.slug}/"),
        test=testing,
    )
    oidc.remember(session_of(request), flow)
    return Redirect(path=url, status_code=303)


@get("/sso/{slug:str}/oidc/{connection_id:str}/callback", name="sso_oidc_callback")
async def oidc_callback(
    request: Request[Any, Any, Any], slug: FromPath[str], connection_id: FromPath[str]
) -> Response[Any]:
    """Where the provider sends the browser back: finish the sign-in, or say why not."""
    params = {key: value for key, value in request.query_params.items() if isinstance(value, str)}
    flow = oidc.take_flow(session_of(request), params.get("state"))
    testing = flow is not None and flow.test
    tenant, signing_in = await _connection(slug, connection_id, testing=testing)
    try:
        identity = await oidc.finish(signing_in, flow, params)
    except SignInRefused as refused:
        if testing:
            return await connection_test_page(request, tenant, signing_in, refused=refused)
        return await refuse_sign_in(
            request,
            tenant.id,
            signing_in.connection.id,
            refused.reason,
            refused.detail,
            # Without a sign-in of this browser through this connection, anyone could send
            # it: it must not fill the organization's log.
            audited=flow is not None
            or oidc.has_flow(session_of(request), signing_in.connection.id),
        )
    if testing:
        return await connection_test_page(request, tenant, signing_in, identity=identity)
    assert flow is not None  # finish refuses a missing flow
    return await complete_sign_in(request, identity, flow.next_path)


handlers = [oidc_start, oidc_callback]
