"""A tenant's page in the back office, `/admin/tenants/{id}`, with its tabs: overview,
subscription and seats (with the usage chart), invoices and payments, members, SSO,
campaigns and audit log.

Every tab reads through the tenant's own services with a read-only context
(`acting_in_tenant(staff, tenant)` with `read_only=True`): the tenant's transactions are then
`READ ONLY` in PostgreSQL, and reading writes nothing, not even an audit event. Support staff
read too; the action links (built by `admin.tenant_actions` and `admin.impersonation`) show
only to staff who hold their permission. An unknown id is a 404.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from billing import seats
from billing.invoices import list_invoices
from billing.money import Money
from billing.profiles import billing_profile
from billing.subscriptions import current_subscription
from billing.tenant_view import list_payments, tenant_overview
from campaigns.campaign_listing import all_campaigns
from core.i18n import N_
from sso.connections import list_connections
from sso.domains import list_domains
from tenants.audit import AuditFilter, list_events
from tenants.context import StaffContext, TenantContext
from tenants.features import FEATURES, effective
from tenants.invitations import list_invitations
from tenants.members import MemberOrder, list_members
from tenants.organizations import tenant_by_id
from tenants.permissions import StaffPermission
from tenants.staff import acting_in_tenant
from web.charts import usage_chart
from web.guards import StaffCtx
from web.pages import locale_of, render

READ = {"permission": StaffPermission.TENANTS_READ}

#: The tabs: (path suffix, msgid).
TABS = (
    ("", N_("Overview")),
    ("subscription", N_("Subscription and seats")),
    ("invoices", N_("Invoices and payments")),
    ("members", N_("Members")),
    ("sso", N_("Single sign-on")),
    ("campaigns", N_("Campaigns")),
    ("audit", N_("Audit log")),
)


async def read_context(staff: StaffContext, tenant_id: UUID) -> TenantContext:
    """A read-only context in the tenant `tenant_id` for `staff` (`NotFound` otherwise)."""
    staff.require(StaffPermission.TENANTS_READ)
    tenant = await tenant_by_id(tenant_id)
    return replace(acting_in_tenant(staff, tenant), read_only=True)


async def _tab(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    tab: str,
    **context: Any,
) -> Template:
    return render(
        request,
        f"admin/tenant_{tab or 'overview'}.html",
        section="tenants",
        org=ctx.tenant,
        tab=tab,
        tabs=TABS,
        base=f"/admin/tenants/{ctx.tenant_id}",
        **context,
    )


@get("/tenants/{tenant_id:uuid}", opt=READ, name="admin_tenant")
async def overview_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    overview = await tenant_overview(ctx)
    sub = await current_subscription(ctx)
    profile = await billing_profile(ctx)
    features = [
        (FEATURES[feature].label, on, feature.value in overview.features)
        for feature, on in effective(overview.features).items()
    ]
    return await _tab(
        request, ctx, "", overview=overview, sub=sub, profile=profile, features=features
    )


@get("/tenants/{tenant_id:uuid}/subscription", opt=READ, name="admin_tenant_subscription")
async def subscription_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    now = datetime.now(UTC)
    sub = await current_subscription(ctx)
    report = await seats.usage_report(ctx, now) if sub is not None else None
    chart = None
    if report is not None:
        chart = usage_chart(report.days, report.summary.capacity, locale_of(request))
    return await _tab(
        request,
        ctx,
        "subscription",
        sub=sub,
        report=report,
        chart=chart,
        today=now.astimezone(ctx.tenant.zone).date(),
    )


@get("/tenants/{tenant_id:uuid}/invoices", opt=READ, name="admin_tenant_invoices")
async def invoices_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    invoices = await list_invoices(ctx)
    payments = await list_payments(ctx)
    return await _tab(
        request,
        ctx,
        "invoices",
        invoices=invoices,
        payments=payments,
        money=lambda amount, currency: Money(amount, currency).format(locale_of(request)),
        today=datetime.now(UTC).astimezone(ctx.tenant.zone).date(),
    )


@get("/tenants/{tenant_id:uuid}/members", opt=READ, name="admin_tenant_members")
async def members_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    members = await list_members(ctx, limit=None, order=MemberOrder.ROLE)
    invitations = await list_invitations(ctx)
    return await _tab(
        request,
        ctx,
        "members",
        members=members.items,
        invitations=invitations,
        now=datetime.now(UTC),
    )


@get("/tenants/{tenant_id:uuid}/sso", opt=READ, name="admin_tenant_sso")
async def sso_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    connections = await list_connections(ctx)
    domains = await list_domains(ctx)
    return await _tab(request, ctx, "sso", connections=connections, domains=domains)


@get("/tenants/{tenant_id:uuid}/campaigns", opt=READ, name="admin_tenant_campaigns")
async def campaigns_tab(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    ctx = await read_context(staff, tenant_id)
    campaigns = await all_campaigns(ctx)
    by_status = Counter(campaign.status for campaign in campaigns)
    return await _tab(
        request,
        ctx,
        "campaigns",
        campaigns=campaigns,
        by_status=sorted(by_status.items()),
        started=sum(c.started for c in campaigns),
        completed=sum(c.completed for c in campaigns),
    )


@get("/tenants/{tenant_id:uuid}/audit", opt=READ, name="admin_tenant_audit")
async def audit_tab(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    cursor: FromQuery[str | None] = None,
) -> Template:
    ctx = await read_context(staff, tenant_id)
    page = await list_events(ctx, AuditFilter(), cursor)
    return await _tab(request, ctx, "audit", page=page)


handlers: list[Any] = [
    overview_tab,
    subscription_tab,
    invoices_tab,
    members_tab,
    sso_tab,
    campaigns_tab,
    audit_tab,
]
