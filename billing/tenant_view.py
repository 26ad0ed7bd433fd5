"""What the back office's tenant page reads of one tenant that no console service gives: the
organization with its features, closing and head counts, and the payments received.

Each reader takes the tenant's context (the back office's is a read-only one:
`dataclasses.replace(acting_in_tenant(staff, tenant), read_only=True)`), reads in the
tenant's own transaction and writes nothing, not even an audit event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from core.database import fetch, tenant_transaction
from tenants.context import TenantContext
from tenants.permissions import Permission


@dataclass(frozen=True)
class TenantOverview:
    """The organization as staff see it on its page."""

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
    parent_id: UUID | None
    parent_name: str | None
    parent_slug: str | None
    features: dict[str, Any]
    closed_at: datetime | None
    delete_after: datetime | None
    created_at: datetime
    updated_at: datetime
    members: int
    pending_invitations: int


async def tenant_overview(ctx: TenantContext) -> TenantOverview:
    """The context's organization with its parent, features, closing and head counts."""
    ctx.require(Permission.ORGANIZATION_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT o.id, o.slug, o.name, o.kind, o.country, o.default_locale, o.timezone,
                      o.currency, o.status, o.siret, o.vat_number, o.parent_id,
                      p.name AS parent_name, p.slug AS parent_slug, o.features, o.closed_at,
                      o.delete_after, o.created_at, o.updated_at,
                      (SELECT count(*) FROM membership m WHERE m.tenant_id = $1)::integer
                          AS members,
                      (SELECT count(*) FROM invitation i WHERE i.tenant_id = $1
                          AND i.accepted_at IS NULL AND i.revoked_at IS NULL
                          AND i.expires_at > now())::integer AS pending_invitations
               FROM organization o LEFT JOIN organization p ON p.id = o.parent_id
               WHERE o.id = $1""",
            ctx.tenant_id,
        )
    row = dict(rows[0])
    features = row["features"]
    row["features"] = dict(json.loads(features) if isinstance(features, str) else features or {})
    return TenantOverview(**row)


@dataclass(frozen=True)
class ReceivedPayment:
    """Money received against one of the tenant's invoices."""

    id: UUID
    invoice_id: UUID
    invoice_number: str | None
    amount: int
    currency: str
    method: str
    reference: str
    received_on: date
    recorded_by_label: str
    created_at: datetime


async def list_payments(ctx: TenantContext, limit: int = 200) -> list[ReceivedPayment]:
    """The payments received, newest first, with their invoice's number."""
    ctx.require(Permission.BILLING_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT p.id, p.invoice_id, i.number AS invoice_number, p.amount,
                      trim(p.currency) AS currency, p.method, p.reference, p.received_on,
                      p.recorded_by_label, p.created_at
               FROM payment p JOIN invoice i ON i.tenant_id = p.tenant_id AND i.id = p.invoice_id
               WHERE p.tenant_id = $1 AND i.tenant_id = $1
               ORDER BY p.received_on DESC, p.created_at DESC, p.id DESC LIMIT $2""",
            ctx.tenant_id,
            limit,
        )
    return [ReceivedPayment(**row) for row in rows]
