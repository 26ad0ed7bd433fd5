"""The end of every sign-in through an identity provider, whatever the protocol: admit the
proven identity (JIT provisioning), start the session, or say clearly why it was refused.

OIDC's callback and SAML's assertion consumer call `complete_sign_in` once every protocol
check passed, and `refuse_sign_in` when one failed. They are helpers, not routes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response

from api.routes.auth import sign_in
from sso.connections import SignInConnection, record_test
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from sso.provisioning import admit, record_refusal
from tenants.context import TenantContext, TenantSummary
from tenants.organizations import member_context
from tenants.permissions import Permission
from web.guards import LoginRequired
from web.pages import actor_for, client_ip, current_user, redirect, render, safe_next, session_of

#: Session key a participant's campaign sets before it sends them to their organization's
#: identity provider: {"tenant_id": str, "code": str}. A sign-in for that tenant then makes
#: no membership (the campaign's start makes the learner).
CAMPAIGN_SIGN_IN = "sso_campaign"

#: What the person reads for each kind of refusal (the reason code is shown beside it).
_MESSAGES = {
    "provisioning.domain": (
        "Your account is not allowed to sign in to this organization through its identity "
        "provider. Ask its administrator to invite you."
    ),
    "provisioning.unverified_email": (
        "Your identity provider did not confirm that this email address is yours, so it "
        "cannot be used to sign in. Ask your administrator to check your account there."
    ),
    "provisioning.disabled": "This account is disabled.",
    "provisioning.suspended": (
        "Your access to this organization is suspended. Ask its administrator."
    ),
    "provisioning.organization": "This organization does not accept sign-ins at the moment.",
    "provisioning.connection": "This sign-in method is turned off.",
    "provisioning.email": "Your identity provider did not give a valid email address.",
}
_PROTOCOL_MESSAGE = (
    "The answer of your organization's identity provider could not be trusted, so you are "
    "not signed in. Try again; if it happens again, tell your administrator."
)


def sso_session(request: Request[Any, Any, Any], tenant_id: UUID) -> dict[str, str] | None:
    """What the session remembers of a sign-in through `tenant_id`'s identity provider
    (`tenant_id`, `connection_id`, `external_id`), or None when the person did not sign in
    through it."""
    if not session_of(request).get("user_id"):
        return None
    marker = session_of(request).get("sso")
    if not isinstance(marker, dict) or marker.get("tenant_id") != str(tenant_id):
        return None
    return {str(k): str(v) for k, v in marker.items()}


def _agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")[:500]


async def complete_sign_in(
    request: Request[Any, Any, Any], identity: ProvenIdentity, next_path: str
) -> Response[Any]:
    """Admit `identity` (creating its account and membership as the rules allow; audited as
    `sso.sign_in`), sign the person in, remember the SSO sign-in in the session
    (`session["sso"]`: what an SSO-required campaign checks) and redirect to `next_path`
    (a safe local path, else the console). A refusal renders the refusal page."""
    session = session_of(request)
    # A campaign's sign-in: marked by its page for this tenant, and coming back to it.
    pending = session.pop(CAMPAIGN_SIGN_IN, None) or {}
    campaign = str(pending.get("tenant_id", "")) == str(identity.tenant_id) and (
        safe_next(next_path, "") == f"/c/{pending.get('code', '')}"
    )
    try:
        admission = await admit(
            identity, campaign=campaign, ip=client_ip(request), user_agent=_agent(request)
        )
    except SignInRefused as refused:
        return await refuse_sign_in(
            request,
            identity.tenant_id,
            identity.connection_id,
            refused.reason,
            refused.detail,
            email=identity.email,
        )
    sign_in(request, admission.user)
    session["sso"] = {
        "tenant_id": str(identity.tenant_id),
        "connection_id": str(identity.connection_id),
        "external_id": admission.external_id,
    }
    return redirect(safe_next(next_path, "/o/"))


async def refuse_sign_in(
    request: Request[Any, Any, Any],
    tenant_id: UUID,
    connection_id: UUID,
    reason: str,
    detail: str,
    *,
    email: str = "",
    audited: bool = True,
) -> Response[Any]:
    """Record `sso.refused` with its reason code (and `detail`, for the administrators) in
    the organization's audit log, and render a page that says what failed: 403 for a person
    the rules refuse (`provisioning.*`), 400 for an answer that failed a protocol check.
    `audited=False` for a request that no sign-in of this browser explains (anyone can send
    one: it must not fill an organization's log)."""
    session_of(request).pop(CAMPAIGN_SIGN_IN, None)
    if audited:
        user = await current_user(request)
        await record_refusal(
            tenant_id,
            connection_id,
            reason,
            detail,
            email=email,
            user_id=user.id if user else None,
            ip=client_ip(request),
            user_agent=_agent(request),
        )
    status = 403 if reason.startswith("provisioning.") else 400
    return render(
        request,
        "sso_refused.html",
        status=status,
        message=_MESSAGES.get(reason, _PROTOCOL_MESSAGE),
        reason=reason,
    )


# --- "test this connection", for both protocols -----------------------------------------


async def connection_tester(
    request: Request[Any, Any, Any], tenant: TenantSummary
) -> TenantContext:
    """The signed-in administrator testing a connection of `tenant`."""
    user = await current_user(request)
    if user is None:
        raise LoginRequired()
    ctx = await member_context(tenant.slug, user, actor_for(request, user))
    ctx.require(Permission.SSO_MANAGE)
    return ctx


async def connection_test_page(
    request: Request[Any, Any, Any],
    tenant: TenantSummary,
    signing_in: SignInConnection,
    *,
    identity: ProvenIdentity | None = None,
    refused: SignInRefused | None = None,
) -> Response[Any]:
    """The page "test this connection" ends on, for the administrator who started it."""
    ctx = await connection_tester(request, tenant)
    connection = signing_in.connection
    await record_test(
        ctx,
        connection.id,
        outcome="ok" if identity else refused.reason if refused else "",
        detail=refused.detail if refused else "",
        email=identity.email if identity else "",
    )
    return render(
        request,
        "console/sso_test_result.html",
        ctx=ctx,
        connection=connection,
        identity=identity,
        role=connection.role_for(identity.groups) if identity else None,
        refused=refused,
        status=200 if identity else 400,
    )
