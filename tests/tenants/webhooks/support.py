"""What the webhook tests set up through the service or, where the service cannot, the
database: an endpoint with its secret, the delivery rows, a back-off that has passed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from core import database
from tenants.webhooks.endpoints import EndpointFields, create_endpoint, reveal_secret
from tenants.webhooks.events import subscribable_events
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def endpoint_with_secret(
    tenant: TenantFixture, url: str, events: tuple[str, ...] | None = None
) -> tuple[UUID, str]:
    """A new endpoint of `tenant` (every event unless told) and its signing secret."""
    fields = EndpointFields(url, "", events if events is not None else subscribable_events())
    endpoint_id = await create_endpoint(tenant.owner_ctx, fields)
    return endpoint_id, await reveal_secret(tenant.owner_ctx, endpoint_id)


async def deliveries(tenant: TenantFixture) -> list[dict[str, Any]]:
    """Every delivery row of `tenant`, oldest first."""
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT * FROM webhook_delivery WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant.id,
        )


async def make_due(tenant: TenantFixture, delivery_id: UUID) -> None:
    """Let the back-off pass (test set-up the service cannot do)."""
    async with as_tenant(tenant.id):
        await database.execute(
            """UPDATE webhook_delivery SET next_attempt_at = now() - interval '1 second'
               WHERE tenant_id = $1 AND id = $2""",
            tenant.id,
            delivery_id,
        )
