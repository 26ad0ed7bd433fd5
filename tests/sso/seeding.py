"""Rows the SSO tests start from: a connection, a verified domain, written as the tenant."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

from core.database import execute
from tests.db import as_tenant


async def add_connection(
    tenant_id: UUID,
    *,
    enabled: bool = True,
    protocol: str = "oidc",
    role_mapping: dict[str, str] | None = None,
    default_role: str = "member",
    external_id_claim: str = "",
    name: str = "Company IdP",
) -> UUID:
    """A connection of `tenant_id` (its protocol settings empty: provisioning reads none)."""
    connection_id = uuid4()
    async with as_tenant(tenant_id):
        await execute(
            """INSERT INTO sso_connection (tenant_id, id, protocol, name, enabled, role_mapping,
                   default_role, external_id_claim)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)""",
            tenant_id,
            connection_id,
            protocol,
            name,
            enabled,
            json.dumps(role_mapping or {}),
            default_role,
            external_id_claim,
        )
    return connection_id


async def add_verified_domain(tenant_id: UUID, domain: str) -> UUID:
    """`domain` claimed and verified by `tenant_id`, as a passed DNS check leaves it."""
    domain_id = uuid4()
    now = datetime.now(UTC)
    async with as_tenant(tenant_id):
        await execute(
            """INSERT INTO sso_domain (tenant_id, id, domain, token, verified_at)
               VALUES ($1, $2, $3, $4, $5)""",
            tenant_id,
            domain_id,
            domain,
            uuid4().hex,
            now,
        )
        await execute(
            """INSERT INTO verified_domain (domain, organization_id, verified_at)
               VALUES ($1, $2, $3)""",
            domain,
            tenant_id,
            now,
        )
    return domain_id


def unique_domain(label: str = "corp") -> str:
    """A domain no other test uses (the database is shared by the session)."""
    return f"{label}-{uuid4().hex[:8]}.example"
