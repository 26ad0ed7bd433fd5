"""An organization's webhook endpoints, as its owners and admins manage them in the console:
add, edit, enable or disable, delete, reveal or rotate the signing secret, send a test event,
read the delivery log and send a delivery again. Every change is audited; every id goes
through `access_endpoint`, so another organization's endpoint is the 404 of an unknown one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, NotFound
from core.ids import uuid_or_404
from core.keyset import decode_cursor, encode_cursor
from core.validation import clean_text
from tenants import audit
from tenants.context import TenantContext
from tenants.features import Feature, require_feature
from tenants.permissions import Permission
from tenants.webhooks.delivery import event_payload, new_secret, queue_attempt
from tenants.webhooks.destinations import clean_url, private_networks_allowed
from tenants.webhooks.events import EVENTS, TEST_EVENT, subscribable_events

PAGE_SIZE = 25


@dataclass(frozen=True)
class EndpointFields:
    """What an admin chooses for an endpoint; every registered event unless told."""

    url: str
    description: str = ""
    events: tuple[str, ...] = field(default_factory=subscribable_events)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint of the organization, without its signing secret."""

    id: UUID
    url: str
    description: str
    #: the events it subscribes to, sorted
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EndpointSummary:
    """An endpoint as the list of endpoints shows it: with how its deliveries stand."""

    id: UUID
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime
    #: deliveries still being attempted
    pending: int
    #: deliveries that used up their attempts (or met a disabled endpoint)
    failed: int
    last_delivered_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to an endpoint, as its log shows it."""

    id: UUID
    event_type: str
    event_id: UUID
    #: pending, delivered or failed
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_code: int | None
    #: the network's words, or one of the msgids of `delivery` (shown translated)
    last_error: str | None
    last_duration_ms: int | None
    #: the delivery this one sends again, if it does
    redelivery_of: UUID | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryPage:
    """One keyset page of an endpoint's deliveries, newest first."""

    deliveries: list[Delivery]
    #: the cursor of the next (older) page; None on the last page
    next_cursor: str | None


def _clean(fields: EndpointFields) -> EndpointFields:
    url = clean_url(fields.url, allow_private=private_networks_allowed())
    description = clean_text(fields.description, "description", max_length=500, required=False)
    return EndpointFields(url, description, EVENTS.check_subscriptions(fields.events))


_ENDPOINT_COLUMNS = "id, url, description, events, enabled, created_at, updated_at"


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        events=tuple(row["events"]),
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _summary(row: dict[str, Any]) -> EndpointSummary:
    return EndpointSummary(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        events=tuple(row["events"]),
        enabled=row["enabled"],
        created_at=row["created_at"],
        pending=row["pending"],
        failed=row["failed"],
        last_delivered_at=row["last_delivered_at"],
    )


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        event_type=row["event_type"],
        event_id=row["event_id"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_response_code=row["last_response_code"],
        last_error=row["last_error"],
        last_duration_ms=row["last_duration_ms"],
        redelivery_of=row["redelivery_of"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
    )


async def access_endpoint(
    ctx: TenantContext, endpoint_id: UUID | str, *, for_update: bool = False
) -> Endpoint:
    """The endpoint `endpoint_id` of this tenant (without its secret); 404 alike for unknown
    ids and another tenant's. Call inside the tenant's transaction."""
    lock = " FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoint "  # noqa: S608 - constant clauses
        f"WHERE tenant_id = $1 AND id = $2{lock}",
        ctx.tenant_id,
        uuid_or_404(endpoint_id),
    )
    if not rows:
        raise NotFound()
    return _endpoint(rows[0])


async def create_endpoint(ctx: TenantContext, fields: EndpointFields) -> UUID:
    """Add an endpoint (enabled, with a new signing secret); its id. `Invalid` for a refused
    address, a too long description, no event or an event nobody registered."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    clean = _clean(fields)
    endpoint_id = uuid4()
    async with tenant_transaction(ctx):
        await require_feature(ctx, Feature.WEBHOOKS)
        await execute(
            """INSERT INTO webhook_endpoint (tenant_id, id, url, description, events, secret,
                   created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            ctx.tenant_id,
            endpoint_id,
            clean.url,
            clean.description,
            list(clean.events),
            new_secret(),
            ctx.actor.user_id,
        )
        await audit.record(
            ctx,
            "webhook.created",
            "webhook_endpoint",
            endpoint_id,
            url=clean.url,
            events=list(clean.events),
        )
    return endpoint_id


async def update_endpoint(
    ctx: TenantContext, endpoint_id: UUID | str, fields: EndpointFields
) -> None:
    """Change an endpoint's URL, description and events (its secret stays); checked as
    `create_endpoint` checks them. Saving what it already has changes nothing."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    clean = _clean(fields)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        if (current.url, current.description, current.events) == (
            clean.url,
            clean.description,
            clean.events,
        ):
            return
        await execute(
            """UPDATE webhook_endpoint SET url = $3, description = $4, events = $5,
                   updated_at = now()
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            clean.url,
            clean.description,
            list(clean.events),
        )
        await audit.record(
            ctx,
            "webhook.updated",
            "webhook_endpoint",
            current.id,
            url=clean.url,
            events=list(clean.events),
        )


async def set_enabled(ctx: TenantContext, endpoint_id: UUID | str, enabled: bool) -> None:
    """Enable or disable an endpoint. A disabled endpoint receives no new event, and what was
    still pending for it fails at its next attempt (redeliver it once enabled again). Setting
    the state it already has changes nothing."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        if current.enabled == enabled:
            return
        await execute(
            """UPDATE webhook_endpoint SET enabled = $3, updated_at = now()
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            enabled,
        )
        await audit.record(
            ctx,
            "webhook.enabled" if enabled else "webhook.disabled",
            "webhook_endpoint",
            current.id,
            url=current.url,
        )


async def delete_endpoint(ctx: TenantContext, endpoint_id: UUID | str) -> None:
    """Delete an endpoint and its delivery log (the audit log keeps that it existed)."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        await execute(
            "DELETE FROM webhook_endpoint WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await audit.record(ctx, "webhook.deleted", "webhook_endpoint", current.id, url=current.url)


async def reveal_secret(ctx: TenantContext, endpoint_id: UUID | str) -> str:
    """The endpoint's signing secret, for an admin to copy into the receiver (audited)."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id)
        rows = await fetch(
            "SELECT secret FROM webhook_endpoint WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await audit.record(
            ctx, "webhook.secret_revealed", "webhook_endpoint", current.id, url=current.url
        )
    secret: str = rows[0]["secret"]
    return secret


async def rotate_secret(ctx: TenantContext, endpoint_id: UUID | str) -> str:
    """Replace the endpoint's signing secret at once; the new one. Attempts from now on,
    retries of earlier events included, are signed with it."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    secret = new_secret()
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        await execute(
            """UPDATE webhook_endpoint SET secret = $3, updated_at = now()
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            secret,
        )
        await audit.record(
            ctx, "webhook.secret_rotated", "webhook_endpoint", current.id, url=current.url
        )
    return secret


async def list_endpoints(ctx: TenantContext) -> list[EndpointSummary]:
    """The tenant's endpoints, newest first, each with how many deliveries are pending and
    failed, and when the last one was delivered."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        # An aggregate without GROUP BY gives one row for every endpoint (zeros and NULL for
        # none), so an inner lateral join keeps them all; Citus refuses the outer join
        # (`LEFT JOIN … ON true`) next to row-level security's conditions, and routes the
        # query to one shard only with the tenant filter inside the subquery (ADR 0002).
        rows = await fetch(
            """SELECT e.id, e.url, e.description, e.events, e.enabled, e.created_at,
                      s.pending, s.failed, s.last_delivered_at
               FROM webhook_endpoint e
               CROSS JOIN LATERAL (
                   SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
                          count(*) FILTER (WHERE d.status = 'failed') AS failed,
                          max(d.delivered_at) AS last_delivered_at
                   FROM webhook_delivery d
                   WHERE d.tenant_id = $1 AND d.endpoint_id = e.id) s
               WHERE e.tenant_id = $1
               ORDER BY e.created_at DESC, e.id DESC""",
            ctx.tenant_id,
        )
    return [_summary(row) for row in rows]


async def get_endpoint(ctx: TenantContext, endpoint_id: UUID | str) -> Endpoint:
    """One endpoint of this tenant, without its secret; `NotFound` otherwise."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        return await access_endpoint(ctx, endpoint_id)


async def list_deliveries(
    ctx: TenantContext, endpoint_id: UUID | str, cursor: str | None = None, limit: int = PAGE_SIZE
) -> DeliveryPage:
    """An endpoint's deliveries, newest first, one keyset page at a time; `Invalid` for a
    forged cursor."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    after = decode_cursor(cursor)
    async with tenant_transaction(ctx):
        endpoint = await access_endpoint(ctx, endpoint_id)
        rows = await fetch(
            """SELECT id, event_type, event_id, status, attempts, next_attempt_at,
                      last_attempt_at, last_response_code, last_error, last_duration_ms,
                      redelivery_of, created_at, delivered_at
               FROM webhook_delivery
               WHERE tenant_id = $1 AND endpoint_id = $2
                 AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
               ORDER BY created_at DESC, id DESC LIMIT $5""",
            ctx.tenant_id,
            endpoint.id,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return DeliveryPage([_delivery(row) for row in rows], next_cursor)


async def send_test_event(ctx: TenantContext, endpoint_id: UUID | str) -> UUID:
    """Send a test event (`ping`) to one enabled endpoint, whatever it subscribes to; the
    delivery's id. A disabled endpoint is a `Conflict`."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    delivery_id, event_id = uuid4(), uuid4()
    async with tenant_transaction(ctx):
        endpoint = await access_endpoint(ctx, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("Enable the endpoint before sending it a test event.")
        data = {"endpoint_id": str(endpoint.id), "message": "Test event sent from Jalon."}
        await execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            ctx.tenant_id,
            delivery_id,
            endpoint.id,
            TEST_EVENT,
            event_id,
            event_payload(ctx, event_id, TEST_EVENT, data),
        )
        await audit.record(ctx, "webhook.tested", "webhook_endpoint", endpoint.id, url=endpoint.url)
        queue_attempt(ctx.tenant_id, delivery_id, 0)
    return delivery_id


async def redeliver(ctx: TenantContext, endpoint_id: UUID | str, delivery_id: UUID | str) -> UUID:
    """Send a delivered or failed event again, as a new delivery of the same event (same
    event id, same payload, a fresh round of attempts); the new delivery's id. A delivery
    still being attempted, or a disabled endpoint, is a `Conflict`."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    new_id = uuid4()
    async with tenant_transaction(ctx):
        endpoint = await access_endpoint(ctx, endpoint_id)
        rows = await fetch(
            """SELECT id, status, event_type, event_id FROM webhook_delivery
               WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3 FOR UPDATE""",
            ctx.tenant_id,
            endpoint.id,
            uuid_or_404(delivery_id),
        )
        if not rows:
            raise NotFound()
        old = rows[0]
        if old["status"] == "pending":
            raise Conflict("This delivery is still being attempted.")
        if not endpoint.enabled:
            raise Conflict("Enable the endpoint before sending it an event again.")
        await execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload, redelivery_of)
               SELECT tenant_id, $3, endpoint_id, event_type, event_id, payload, id
               FROM webhook_delivery WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            old["id"],
            new_id,
        )
        await audit.record(
            ctx,
            "webhook.redelivered",
            "webhook_delivery",
            new_id,
            url=endpoint.url,
            event=old["event_type"],
            event_id=old["event_id"],
            previous=old["id"],
        )
        queue_attempt(ctx.tenant_id, new_id, 0)
    return new_id
