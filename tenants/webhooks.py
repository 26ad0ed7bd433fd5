"""Outgoing webhooks: each organization's endpoints, and the outbox of their deliveries.

`emit()` runs inside the transaction of the change it announces and writes one delivery row
per subscribed endpoint, so the event commits or rolls back with the change; the delivery job
is queued after commit (the mail outbox's mechanism, `core.mail`). The job claims the row,
POSTs the signed JSON and records the outcome: 2xx is delivered, anything else is tried again
later (1 min, 5 min, 30 min, 2 h, 12 h) until `MAX_ATTEMPTS`, then the delivery has failed.
`sweep_webhooks`, every minute, queues the deliveries that are due: the retries, and any
delivery whose job was lost. Design: docs/adr/0012-outgoing-webhooks.md; the receiver's side:
docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import idna

from core.database import SystemScope, execute, fetch, global_transaction, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import N_
from core.ids import uuid_or_404
from core.jobs import enqueue, every, job
from core.keyset import decode_cursor, encode_cursor
from core.settings import get_settings
from core.validation import clean_text
from tenants import audit
from tenants.context import TenantContext
from tenants.organizations import dangerously_sweep_tenants
from tenants.permissions import Permission

#: The events an endpoint may subscribe to.
EVENT_TYPES = ("participation.shared", "campaign.closed")
#: The event "send a test event" sends: never subscribed to, sent to one endpoint on demand.
TEST_EVENT = "ping"

#: Waits after the 1st, 2nd… failed attempt; one attempt more than waits, then it has failed.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_SECONDS = 10.0
#: A claimed delivery is left alone this long: a worker that died mid-attempt is retried after.
LEASE = timedelta(minutes=2)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
PAGE_SIZE = 25
MAX_URL_LENGTH = 2000
USER_AGENT = "Jalon-Webhooks/1"

#: What a delivery's last error may say besides the network's own words (shown translated).
DISABLED_ERROR = N_("The endpoint is disabled.")
PRIVATE_ERROR = N_("The address leads to a private network.")
TIMEOUT_ERROR = N_("No answer within 10 seconds.")
NOT_2XX_ERROR = N_("The answer was not a 2xx status.")


# --- signing -----------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `Jalon-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, keyed
    with the whole secret (prefix included), as docs/webhooks.md tells receivers."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# --- destinations ------------------------------------------------------------------------


def private_networks_allowed() -> bool:
    """True outside production, or when JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS says so."""
    return get_settings().webhooks_allow_private_networks


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check_idna(host: str) -> None:
    """Raise `UnicodeError` for a host name that IDNA 2008 refuses (a non-ASCII name that
    cannot be encoded, or an ASCII `xn--` label that does not decode)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return  # an address, not a name
    except ValueError:
        pass
    if host.isascii():
        for label in host.split("."):
            if label.lower().startswith("xn--"):
                idna.decode(label)
    else:
        idna.encode(host, uts46=True)


def clean_url(value: str | None, *, allow_private: bool) -> str:
    """An http(s) URL for an endpoint; `Invalid` for another scheme, credentials in the URL,
    and (unless `allow_private`) a literal private, loopback or link-local address."""
    url = (value or "").strip()
    if not url:
        raise Invalid("This field is required.", field="url")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(
            "This field is too long ({max} characters at most).", field="url", max=MAX_URL_LENGTH
        )
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        raise Invalid("Enter an address starting with https:// or http://.", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise Invalid("Enter an address starting with https:// or http://.", field="url") from None
    # (the table's check wants 10 characters at least: "http://a/" is no receiver anyway)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) < 10:
        raise Invalid("Enter an address starting with https:// or http://.", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("Leave the user name and password out of the address.", field="url")
    try:
        # what the sender will do with it: an address httpx or IDNA refuses is refused here
        httpx.URL(url)
        _check_idna(parts.hostname)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise Invalid("Enter an address starting with https:// or http://.", field="url") from None
    if not allow_private:
        host = parts.hostname.lower()
        if host == "localhost" or host.endswith(".localhost"):
            raise Invalid(PRIVATE_ERROR, field="url")
        try:
            literal = _is_public(host)
        except ValueError:
            literal = True  # a name: checked again, resolved, before each attempt
        if not literal:
            raise Invalid(PRIVATE_ERROR, field="url")
    return url


class RefusedDestination(Exception):
    """The endpoint's name resolves to an address webhooks may not reach."""


async def check_destination(url: str) -> None:
    """Resolve the endpoint's host and refuse it when any address is not public (checked at
    each attempt: a name may point elsewhere since it was saved)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpx.ConnectError(f"cannot resolve {host}: {error}") from error
    if not infos or not all(_is_public(str(info[4][0])) for info in infos):
        raise RefusedDestination(PRIVATE_ERROR)


# --- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointFields:
    """What an admin chooses for an endpoint."""

    url: str
    description: str = ""
    events: tuple[str, ...] = EVENT_TYPES


def _clean(fields: EndpointFields) -> EndpointFields:
    url = clean_url(fields.url, allow_private=private_networks_allowed())
    description = clean_text(fields.description, "description", max_length=500, required=False)
    events = tuple(sorted(set(fields.events)))
    if not events:
        raise Invalid("Choose at least one event.", field="events")
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise Invalid("Unknown event: {event}.", field="events", event=unknown[0])
    return EndpointFields(url, description, events)


_ENDPOINT_COLUMNS = "id, url, description, events, enabled, created_at, updated_at"


async def access_endpoint(
    ctx: TenantContext, endpoint_id: UUID | str, *, for_update: bool = False
) -> dict[str, Any]:
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
    return rows[0]


async def create_endpoint(ctx: TenantContext, fields: EndpointFields) -> UUID:
    """Add an endpoint (enabled, with a new signing secret); its id."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    clean = _clean(fields)
    endpoint_id = uuid4()
    async with tenant_transaction(ctx):
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
    """Change an endpoint's URL, description and events (its secret stays)."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    clean = _clean(fields)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        if (current["url"], current["description"], tuple(current["events"])) == (
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
            current["id"],
            clean.url,
            clean.description,
            list(clean.events),
        )
        await audit.record(
            ctx,
            "webhook.updated",
            "webhook_endpoint",
            current["id"],
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
        if current["enabled"] == enabled:
            return
        await execute(
            """UPDATE webhook_endpoint SET enabled = $3, updated_at = now()
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current["id"],
            enabled,
        )
        await audit.record(
            ctx,
            "webhook.enabled" if enabled else "webhook.disabled",
            "webhook_endpoint",
            current["id"],
            url=current["url"],
        )


async def delete_endpoint(ctx: TenantContext, endpoint_id: UUID | str) -> None:
    """Delete an endpoint and its delivery log (the audit log keeps that it existed)."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id, for_update=True)
        await execute(
            "DELETE FROM webhook_endpoint WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current["id"],
        )
        await audit.record(
            ctx, "webhook.deleted", "webhook_endpoint", current["id"], url=current["url"]
        )


async def reveal_secret(ctx: TenantContext, endpoint_id: UUID | str) -> str:
    """The endpoint's signing secret, for an admin to copy into the receiver (audited)."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        current = await access_endpoint(ctx, endpoint_id)
        rows = await fetch(
            "SELECT secret FROM webhook_endpoint WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current["id"],
        )
        await audit.record(
            ctx, "webhook.secret_revealed", "webhook_endpoint", current["id"], url=current["url"]
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
            current["id"],
            secret,
        )
        await audit.record(
            ctx, "webhook.secret_rotated", "webhook_endpoint", current["id"], url=current["url"]
        )
    return secret


async def list_endpoints(ctx: TenantContext) -> list[dict[str, Any]]:
    """The tenant's endpoints, newest first, each with how many deliveries are pending and
    failed, and when the last one was delivered."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        return await fetch(
            """SELECT e.id, e.url, e.description, e.events, e.enabled, e.created_at,
                      coalesce(s.pending, 0) AS pending, coalesce(s.failed, 0) AS failed,
                      s.last_delivered_at
               FROM webhook_endpoint e
               LEFT JOIN LATERAL (
                   SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
                          count(*) FILTER (WHERE d.status = 'failed') AS failed,
                          max(d.delivered_at) AS last_delivered_at
                   FROM webhook_delivery d
                   WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id) s ON true
               WHERE e.tenant_id = $1
               ORDER BY e.created_at DESC, e.id DESC""",
            ctx.tenant_id,
        )


async def get_endpoint(ctx: TenantContext, endpoint_id: UUID | str) -> dict[str, Any]:
    """One endpoint of this tenant, without its secret; `NotFound` otherwise."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    async with tenant_transaction(ctx):
        return await access_endpoint(ctx, endpoint_id)


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[dict[str, Any]]
    next_cursor: str | None


async def list_deliveries(
    ctx: TenantContext, endpoint_id: UUID | str, cursor: str | None = None, limit: int = PAGE_SIZE
) -> DeliveryPage:
    """An endpoint's deliveries, newest first, one keyset page at a time."""
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
            endpoint["id"],
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return DeliveryPage(rows, next_cursor)


# --- events ------------------------------------------------------------------------------


def _enqueue(tenant_id: UUID, delivery_id: UUID, attempts: int, tag: str = "") -> None:
    # One job id per delivery and attempt: a retried request cannot queue the same try twice.
    enqueue(
        "deliver_webhook",
        str(tenant_id),
        str(delivery_id),
        job_id=f"webhook:{delivery_id}:{attempts}{tag}",
    )


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _payload(ctx: TenantContext, event_id: UUID, event_type: str, data: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "created_at": datetime.now(UTC).isoformat(),
            "organization": {"id": str(ctx.tenant_id), "slug": ctx.tenant.slug},
            "data": data,
        },
        default=_json_value,
    )


async def emit(ctx: TenantContext, event_type: str, data: Mapping[str, Any]) -> UUID | None:
    """Announce `event_type` to every enabled endpoint of the tenant subscribed to it: one
    delivery row each, written in the caller's open transaction (so the event commits or rolls
    back with the change), delivered after commit. The event's id, or None when no endpoint
    listens. Needs no permission: whoever may make the change may announce it."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    event_id = uuid4()
    rows = await fetch(
        """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
               payload)
           SELECT e.tenant_id, gen_random_uuid(), e.id, $2, $3, $4::jsonb
           FROM webhook_endpoint e
           WHERE e.tenant_id = $1 AND e.enabled AND $2 = ANY (e.events)
           RETURNING id""",
        ctx.tenant_id,
        event_type,
        event_id,
        _payload(ctx, event_id, event_type, data),
    )
    for row in rows:
        _enqueue(ctx.tenant_id, row["id"], 0)
    return event_id if rows else None


async def send_test_event(ctx: TenantContext, endpoint_id: UUID | str) -> UUID:
    """Send a `ping` event to one enabled endpoint, whatever it subscribes to; the delivery's
    id."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    delivery_id, event_id = uuid4(), uuid4()
    async with tenant_transaction(ctx):
        endpoint = await access_endpoint(ctx, endpoint_id)
        if not endpoint["enabled"]:
            raise Conflict("Enable the endpoint before sending it a test event.")
        data = {"endpoint_id": str(endpoint["id"]), "message": "Test event sent from Jalon."}
        await execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            ctx.tenant_id,
            delivery_id,
            endpoint["id"],
            TEST_EVENT,
            event_id,
            _payload(ctx, event_id, TEST_EVENT, data),
        )
        await audit.record(
            ctx, "webhook.tested", "webhook_endpoint", endpoint["id"], url=endpoint["url"]
        )
        _enqueue(ctx.tenant_id, delivery_id, 0)
    return delivery_id


async def redeliver(ctx: TenantContext, endpoint_id: UUID | str, delivery_id: UUID | str) -> UUID:
    """Send a delivered or failed event again, as a new delivery of the same event (same
    event id, same payload, a fresh round of attempts); the new delivery's id. A delivery
    still being attempted is a `Conflict`."""
    ctx.require(Permission.WEBHOOKS_MANAGE)
    new_id = uuid4()
    async with tenant_transaction(ctx):
        endpoint = await access_endpoint(ctx, endpoint_id)
        rows = await fetch(
            """SELECT id, status, event_type, event_id FROM webhook_delivery
               WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3 FOR UPDATE""",
            ctx.tenant_id,
            endpoint["id"],
            uuid_or_404(delivery_id),
        )
        if not rows:
            raise NotFound()
        old = rows[0]
        if old["status"] == "pending":
            raise Conflict("This delivery is still being attempted.")
        if not endpoint["enabled"]:
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
            url=endpoint["url"],
            event=old["event_type"],
            event_id=old["event_id"],
            previous=old["id"],
        )
        _enqueue(ctx.tenant_id, new_id, 0)
    return new_id


# --- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    response_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


async def post(url: str, secret: str, delivery_id: UUID, event_type: str, body: bytes) -> Attempt:
    """POST one signed delivery; never raises for what the receiver or the network does."""
    started = time.monotonic()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "jalon-event": event_type,
        "jalon-delivery": str(delivery_id),
        "jalon-signature": signature_header(secret, body, int(time.time())),
    }
    code: int | None = None
    error: str | None = None
    try:
        # The whole attempt, name lookup included, within TIMEOUT_SECONDS (httpx's own timeout
        # is per read: a receiver trickling bytes would hold the worker), and the answer's
        # body is never read: its status is all that counts.
        async with asyncio.timeout(TIMEOUT_SECONDS):
            if not private_networks_allowed():
                await check_destination(url)
            # No redirects (a 3xx is a failed attempt: it could lead anywhere), no proxy
            # settings from the environment.
            async with (
                httpx.AsyncClient(
                    timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
                ) as client,
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                code = response.status_code
        if not 200 <= code < 300:
            error = NOT_2XX_ERROR
    except RefusedDestination:
        error = PRIVATE_ERROR
    except (TimeoutError, httpx.TimeoutException):
        error = TIMEOUT_ERROR
    except httpx.HTTPError as failure:
        error = (str(failure) or type(failure).__name__)[:1000]
    except Exception as failure:  # an address httpx or the resolver refuses, say: it
        # must end as a failed attempt, or the claimed delivery would never be recorded
        error = (str(failure) or type(failure).__name__)[:1000]
    duration_ms = int((time.monotonic() - started) * 1000)
    return Attempt(code, error, duration_ms)


_CLAIM = """
WITH claimed AS (
    UPDATE webhook_delivery SET attempts = attempts + 1, last_attempt_at = now(),
        next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
    WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at <= now()
        AND attempts < $4
    RETURNING id, endpoint_id, event_type, payload, attempts)
SELECT c.*, e.url, e.secret, e.enabled
FROM claimed c JOIN webhook_endpoint e ON e.tenant_id = $1 AND e.id = c.endpoint_id
"""

_RECORD = """
UPDATE webhook_delivery SET status = $3, next_attempt_at = $4,
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() END,
    last_response_code = $5, last_error = $6, last_duration_ms = $7, updated_at = now()
WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND attempts = $8
"""


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts; None once they are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + BACKOFF[attempts - 1]


@job
async def deliver_webhook(ctx: dict[str, Any], tenant_id: str, delivery_id: str) -> str:
    """Make one attempt at a due delivery and record it; the delivery's status afterwards
    ("skipped" when it was not due: delivered, failed, or claimed by another worker).

    At least once: the receiver dedupes on `Jalon-Delivery` (or on the event's id). The job
    itself never raises for a receiver's failure: the back-off is the delivery row's, and the
    sweep queues the next attempt when it is due.
    """
    async with tenant_transaction(SystemScope(UUID(tenant_id))):
        rows = await fetch(
            _CLAIM, UUID(tenant_id), UUID(delivery_id), LEASE.total_seconds(), MAX_ATTEMPTS
        )
    if not rows:
        return "skipped"
    claim = rows[0]
    if not claim["enabled"]:
        outcome = Attempt(None, DISABLED_ERROR, 0)
        status, retry_at = "failed", None
    else:
        body = encode_body(json.loads(claim["payload"]))
        outcome = await post(claim["url"], claim["secret"], claim["id"], claim["event_type"], body)
        retry_at = None if outcome.delivered else next_attempt(claim["attempts"], datetime.now(UTC))
        status = "delivered" if outcome.delivered else "pending" if retry_at else "failed"
    async with tenant_transaction(SystemScope(UUID(tenant_id))):
        await execute(
            _RECORD,
            UUID(tenant_id),
            claim["id"],
            status,
            retry_at,
            outcome.response_code,
            outcome.error,
            outcome.duration_ms,
            claim["attempts"],
        )
    return status


async def dangerously_due_deliveries(limit: int = 500) -> list[dict[str, Any]]:
    """(tenant_id, id, attempts) of the deliveries due now, in every tenant, oldest first.

    The one read across tenants of this module, through the `due_sweep` policy (ids only);
    call inside a transaction with no tenant set.
    """
    await execute("SET LOCAL jalon.sweep = 'webhook_delivery'")
    rows = await fetch(
        """SELECT tenant_id, id, attempts FROM webhook_delivery
           WHERE status = 'pending' AND next_attempt_at <= now()
           ORDER BY next_attempt_at LIMIT $1""",
        limit,
    )
    await execute("SET LOCAL jalon.sweep = ''")
    return rows


@every(minutes=1)
async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """Queue the deliveries that are due: retries whose back-off has passed, and deliveries
    whose job was lost (Redis restarted, a worker killed mid-attempt). How many were queued."""
    async with global_transaction():
        rows = await dangerously_due_deliveries()
        for row in rows:
            # The sweep's own job id in the tag: a lost job's id may linger in Redis.
            _enqueue(
                row["tenant_id"], row["id"], row["attempts"], f":sweep:{ctx.get('job_id', '')}"
            )
    return len(rows)


#: Finished deliveries (delivered or failed) are kept this long in the log, then deleted.
KEEP_DELIVERIES = timedelta(days=90)


@every(minutes=60)
async def purge_webhook_deliveries(ctx: dict[str, Any]) -> int:
    """Delete finished deliveries older than `KEEP_DELIVERIES` (their payloads name people);
    tenant by tenant, as row-level security wants. How many were deleted."""

    async def purge(tenant_id: UUID) -> int:
        status = await execute(
            """DELETE FROM webhook_delivery WHERE tenant_id = $1
                 AND status IN ('delivered', 'failed') AND created_at < now() - $2::interval""",
            tenant_id,
            KEEP_DELIVERIES,
        )
        return int(status.split()[-1])

    return await dangerously_sweep_tenants(purge)
