"""Home-realm discovery: which identity providers an email address should sign in through.

An address whose domain an organization verified signs in through that organization's
enabled connections (one: straight there; several: the person chooses). Nothing is said
about addresses of other domains: the sign-in page then asks for the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote
from uuid import UUID

from core.database import (
    dangerously_switch_tenant,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Invalid
from sso.domains import email_domain
from tenants.context import Actor, TenantContext, TenantSummary


@dataclass(frozen=True)
class ConnectionChoice:
    """An enabled connection a person may sign in through, and where its flow starts."""

    tenant_id: UUID
    tenant_slug: str
    tenant_name: str
    connection_id: UUID
    name: str
    protocol: str

    def start_url(self, next_path: str = "") -> str:
        """The connection's start route (`/sso/{slug}/{protocol}/{id}/start`), with `next`."""
        url = f"/sso/{self.tenant_slug}/{self.protocol}/{self.connection_id}/start"
        return f"{url}?next={quote(next_path, safe='/')}" if next_path else url


async def enabled_connections(tenant_id: UUID, slug: str, name: str) -> list[ConnectionChoice]:
    """The enabled connections of a tenant, oldest first (call inside its transaction)."""
    rows = await fetch(
        """SELECT id, name, protocol FROM sso_connection
           WHERE tenant_id = $1 AND enabled ORDER BY created_at, id""",
        tenant_id,
    )
    return [
        ConnectionChoice(
            tenant_id=tenant_id,
            tenant_slug=slug,
            tenant_name=name,
            connection_id=row["id"],
            name=row["name"],
            protocol=row["protocol"],
        )
        for row in rows
    ]


async def connections_for_email(email: str) -> list[ConnectionChoice]:
    """The enabled connections of the organization that verified `email`'s domain (of an open
    organization), oldest first; empty for any other address, or one that is not valid."""
    try:
        domain = email_domain(email)
    except Invalid:
        return []
    async with global_transaction():
        orgs = await fetch(
            """SELECT o.id, o.slug, o.name FROM verified_domain v
               JOIN organization o ON o.id = v.organization_id
               WHERE v.domain = $1 AND o.status NOT IN ('suspended', 'closed')""",
            domain,
        )
        if not orgs:
            return []
        org = orgs[0]
        await dangerously_switch_tenant(org["id"])
        return await enabled_connections(org["id"], org["slug"], org["name"])


async def sso_available(ctx: TenantContext) -> bool:
    """Whether the organization has an enabled connection (what an SSO-required campaign
    needs to be offered)."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            "SELECT 1 FROM sso_connection WHERE tenant_id = $1 AND enabled LIMIT 1",
            ctx.tenant_id,
        )
    return bool(rows)


async def sign_in_connections(tenant: TenantSummary) -> list[ConnectionChoice]:
    """The enabled connections an organization offers for signing in, oldest first: public,
    like the start routes they lead to (an SSO-required campaign's landing page lists them)."""
    ctx = TenantContext(tenant=tenant, actor=Actor.system("sso sign-in"))
    async with tenant_transaction(ctx):
        return await enabled_connections(tenant.id, tenant.slug, tenant.name)
