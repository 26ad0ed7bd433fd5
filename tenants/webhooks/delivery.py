"""Delivering webhooks: the outbox, signing, the attempts and their back-off.

`emit()` runs inside the transaction of the change it announces and writes one delivery row
per subscribed endpoint, so the event commits or rolls back with the change; the delivery job
is queued after commit (the mail outbox's mechanism, `core.mail`). The job claims the row,
sends the signed JSON through the `WebhookSender` in use and records the outcome: 2xx is
delivered, anything else is tried again later (1 min, 5 min, 30 min, 2 h, 12 h) until
`MAX_ATTEMPTS`, then the delivery has failed. `sweep_webhooks`, every minute, queues the
deliveries that are due: the retries, and any delivery whose job was lost;
`purge_webhook_deliveries`, every hour, deletes finished deliveries after `KEEP_DELIVERIES`.

`HttpSender` POSTs over the network (production and the embedded default alike);
`InProcessSender` keeps the requests in memory and answers from a script, for tests that need
no receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

import httpx

from core.database import (
    SystemScope,
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import NotFound
from core.i18n import N_
from core.ids import uuid_or_404
from core.jobs import enqueue, every, job
from tenants.context import StaffContext, TenantContext, TenantSummary
from tenants.organizations import SUMMARY_SQL, dangerously_sweep_tenants, summary
from tenants.permissions import StaffPermission
from tenants.webhooks.destinations import (
    PRIVATE_ERROR,
    RefusedDestination,
    check_destination,
    private_networks_allowed,
)
from tenants.webhooks.events import EVENTS

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
#: Finished deliveries (delivered or failed) are kept this long in the log, then deleted.
KEEP_DELIVERIES = timedelta(days=90)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
USER_AGENT = "Jalon-Webhooks/1"

#: What a delivery's last error may say besides the network's own words (shown translated).
DISABLED_ERROR = N_("The endpoint is disabled.")
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


@dataclass(frozen=True)
class SignedRequest:
    """One attempt's POST, signed, as a sender sends it."""

    url: str
    headers: Mapping[str, str]
    body: bytes


def signed_request(
    url: str, secret: str, delivery_id: UUID, event_type: str, body: bytes, timestamp: int
) -> SignedRequest:
    """The POST of one attempt at a delivery: the JSON body and the headers docs/webhooks.md
    promises (`Jalon-Event`, `Jalon-Delivery`, `Jalon-Signature` signed at `timestamp`)."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "jalon-event": event_type,
        "jalon-delivery": str(delivery_id),
        "jalon-signature": signature_header(secret, body, timestamp),
    }
    return SignedRequest(url, headers, body)


# --- senders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    response_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        """True for a 2xx answer: the receiver has the event."""
        return self.response_code is not None and 200 <= self.response_code < 300


def answered(response_code: int, duration_ms: int) -> Attempt:
    """The attempt the receiver answered with `response_code`: delivered for a 2xx, a failed
    attempt saying so for any other status (a 3xx too: a redirect could lead anywhere)."""
    error = None if 200 <= response_code < 300 else NOT_2XX_ERROR
    return Attempt(response_code, error, duration_ms)


class WebhookSender(Protocol):
    """Sends one signed request; never raises for what the receiver or the network does."""

    async def send(self, request: SignedRequest) -> Attempt: ...


class HttpSender:
    """POSTs over the network with httpx: no redirects, no proxy settings from the
    environment, one deadline for the whole attempt, and (unless private networks are
    allowed) the destination's addresses checked first."""

    def __init__(self, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds

    async def send(self, request: SignedRequest) -> Attempt:
        started = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            # The whole attempt, name lookup included, within the deadline (httpx's own
            # timeout is per read: a receiver trickling bytes would hold the worker), and the
            # answer's body is never read: its status is all that counts.
            async with asyncio.timeout(self.timeout_seconds):
                if not private_networks_allowed():
                    await check_destination(request.url)
                async with (
                    httpx.AsyncClient(
                        timeout=self.timeout_seconds, follow_redirects=False, trust_env=False
                    ) as client,
                    client.stream(
                        "POST", request.url, content=request.body, headers=dict(request.headers)
                    ) as response,
                ):
                    code = response.status_code
        except RefusedDestination:
            error = PRIVATE_ERROR
        except (TimeoutError, httpx.TimeoutException):
            error = TIMEOUT_ERROR
        except Exception as failure:  # httpx's errors, and an address httpx or the resolver
            # refuses, say: it must end as a failed attempt, or the claimed delivery would
            # never be recorded
            error = (str(failure) or type(failure).__name__)[:1000]
        duration_ms = int((time.monotonic() - started) * 1000)
        if code is not None and error is None:
            return answered(code, duration_ms)
        return Attempt(code, error, duration_ms)


class InProcessSender:
    """Sends nothing over the network: keeps every request in `sent` and answers with the
    next status of `statuses` (200 once they run out)."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.statuses = list(statuses)
        self.sent: list[SignedRequest] = []

    async def send(self, request: SignedRequest) -> Attempt:
        self.sent.append(request)
        return answered(self.statuses.pop(0) if self.statuses else 200, 0)


_sender: WebhookSender = HttpSender()


def use_sender(sender: WebhookSender) -> WebhookSender:
    """Send webhooks through `sender` from now on."""
    global _sender
    _sender = sender
    return _sender


def get_sender() -> WebhookSender:
    """The sender deliveries go through (`HttpSender` unless `use_sender` chose another)."""
    return _sender


# --- the outbox --------------------------------------------------------------------------


def queue_attempt(tenant_id: UUID, delivery_id: UUID, attempts: int, tag: str = "") -> None:
    """Queue the delivery's next attempt after commit. One job id per delivery and attempt
    (`tag` tells a sweep's from the first), so a retried request cannot queue a try twice."""
    enqueue(
        "deliver_webhook",
        str(tenant_id),
        str(delivery_id),
        job_id=f"webhook:{delivery_id}:{attempts}{tag}",
    )


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def event_payload(
    ctx: TenantContext, event_id: UUID, event_type: str, data: Mapping[str, Any]
) -> str:
    """The JSON of an event as stored in its deliveries: the envelope of docs/webhooks.md
    (`id`, `type`, `created_at`, `organization`) around `data`; dates in ISO 8601, ids and
    other values as text."""
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
    listens. `ValueError` for an event nobody registered (`tenants.webhooks.events`). Needs no
    permission: whoever may make the change may announce it."""
    if not EVENTS.is_subscribable(event_type):
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
        event_payload(ctx, event_id, event_type, data),
    )
    for row in rows:
        queue_attempt(ctx.tenant_id, row["id"], 0)
    return event_id if rows else None


# --- attempts ----------------------------------------------------------------------------


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

# The delivery time is a parameter ($9, None unless delivered), not `CASE … now()`: Citus
# refuses non-immutable functions inside CASE or COALESCE of an UPDATE (ADR 0002).
_RECORD = """
UPDATE webhook_delivery SET status = $3, next_attempt_at = $4, delivered_at = $9,
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
        request = signed_request(
            claim["url"],
            claim["secret"],
            claim["id"],
            claim["event_type"],
            encode_body(json.loads(claim["payload"])),
            int(time.time()),
        )
        outcome = await get_sender().send(request)
        retry_at = None if outcome.delivered else next_attempt(claim["attempts"], datetime.now(UTC))
        status = "delivered" if outcome.delivered else "pending" if retry_at else "failed"
    delivered_at = datetime.now(UTC) if status == "delivered" else None
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
            delivered_at,
        )
    return status


@dataclass(frozen=True)
class DueDelivery:
    """A delivery whose next attempt is due, as the sweep sees it (ids only)."""

    tenant_id: UUID
    id: UUID
    attempts: int


async def dangerously_due_deliveries(limit: int = 500) -> list[DueDelivery]:
    """The deliveries due now, in every tenant, oldest first (at most 1,000).

    The one read across tenants of the webhooks: the `SECURITY DEFINER` function
    `webhook_due_deliveries` (migration `tenants_2026_12_03t21_01_00_000000`, ADR 0024) reads
    them as the owner role and returns ids only; no setting of this connection opens them.
    """
    # On Citus the function runs on the coordinator and its read fans out to every shard,
    # as a read may (it locks no row).
    rows = await fetch(
        "SELECT tenant_id, id, attempts FROM webhook_due_deliveries($1)",
        limit,
    )
    return [DueDelivery(row["tenant_id"], row["id"], row["attempts"]) for row in rows]


@every(minutes=1)
async def sweep_webhooks(ctx: dict[str, Any]) -> int:
    """Queue the deliveries that are due: retries whose back-off has passed, and deliveries
    whose job was lost (Redis restarted, a worker killed mid-attempt). How many were queued."""
    async with global_transaction():
        due = await dangerously_due_deliveries()
        for delivery in due:
            # The sweep's own job id in the tag: a lost job's id may linger in Redis.
            queue_attempt(
                delivery.tenant_id,
                delivery.id,
                delivery.attempts,
                f":sweep:{ctx.get('job_id', '')}",
            )
    return len(due)


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


# --- the back office ---------------------------------------------------------------------


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery that used up its attempts, as the back office's jobs page lists it."""

    tenant: TenantSummary
    id: UUID
    endpoint_id: UUID
    url: str
    event_type: str
    attempts: int
    last_response_code: int | None
    last_error: str | None
    failed_at: datetime


async def dangerously_failed_deliveries(
    staff: StaffContext, limit: int = 100
) -> list[FailedDelivery]:
    """The `limit` most recently failed deliveries of every organization, newest first.

    Deliveries are tenant-owned, under row-level security (only the sweep's function reads
    across tenants, and ids only): one read transaction switches its tenant to each organization in
    turn and reads at most `limit` failed deliveries there, then keeps the newest `limit`.
    """
    staff.require(StaffPermission.TENANTS_READ)
    found: list[FailedDelivery] = []
    async with global_transaction(staff.user_id):
        tenants = [summary(row) for row in await fetch(SUMMARY_SQL + " ORDER BY id")]
        for tenant in tenants:
            await dangerously_switch_tenant(tenant.id)
            rows = await fetch(
                """SELECT d.id, d.endpoint_id, e.url, d.event_type, d.attempts,
                          d.last_response_code, d.last_error, d.updated_at
                   FROM webhook_delivery d
                   JOIN webhook_endpoint e ON e.tenant_id = $1 AND e.id = d.endpoint_id
                   WHERE d.tenant_id = $1 AND d.status = 'failed'
                   ORDER BY d.updated_at DESC, d.id DESC LIMIT $2""",
                tenant.id,
                limit,
            )
            found.extend(
                FailedDelivery(
                    tenant=tenant,
                    id=row["id"],
                    endpoint_id=row["endpoint_id"],
                    url=row["url"],
                    event_type=row["event_type"],
                    attempts=row["attempts"],
                    last_response_code=row["last_response_code"],
                    last_error=row["last_error"],
                    failed_at=row["updated_at"],
                )
                for row in rows
            )
    found.sort(key=lambda delivery: delivery.failed_at, reverse=True)
    return found[:limit]


async def endpoint_of_delivery(ctx: TenantContext, delivery_id: UUID | str) -> UUID:
    """The endpoint of the tenant's delivery `delivery_id` (to send it again with
    `tenants.webhooks.endpoints.redeliver`); `NotFound` when the tenant has none of that id."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            "SELECT endpoint_id FROM webhook_delivery WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            uuid_or_404(delivery_id),
        )
    if not rows:
        raise NotFound()
    endpoint_id: UUID = rows[0]["endpoint_id"]
    return endpoint_id
