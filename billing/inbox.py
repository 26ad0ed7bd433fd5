"""Inbound payment-gateway webhooks: the inbox, and the job that applies each event once.

The endpoint (`api/routes/billing_stripe.py`) hands the raw body and its signature header to
`receive_stripe_webhook`: the signature is checked with Stripe's SDK inside its tolerance
window, the event goes into the global `gateway_event` inbox (its id is the key: a
redelivery stores nothing and queues nothing), and the endpoint answers at once. The job
`process_gateway_event` then applies it, idempotently and whatever the order of arrival:

- the tenant is the one `gateway_customer` maps the event's customer to (never a scan of
  the tenants, never the payload's word alone); an unknown customer's event is ignored;
- an event that concerns a subscription (the subscription's own events, Checkout's
  completion, an invoice's) does not apply its payload, which may be older than what Jalon
  already knows: it re-reads the subscription from Stripe and applies that, unless a later
  read was applied already (`subscription.gateway_synced_at` holds the time of the read
  applied last). Duplicates, replays and shuffled deliveries thus end in Stripe's state;
- the event row is claimed (`processed_at`) in the same transaction as the change, so a
  job run twice changes nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import stripe

from billing import dunning, invoices, seats
from billing.gateways.base import GatewayError, GatewayObjectMissing
from billing.gateways.stripe import StripeGateway, StripeSubscriptionState, moment_of
from billing.money import Money
from billing.subscriptions import MAX_SEATS, SubscriptionStatus, transition
from core.database import after_commit, execute, fetch, global_transaction, tenant_transaction
from core.errors import Conflict, NotFound, UserError
from core.jobs import enqueue, every, get_queue, job
from core.settings import get_settings
from tenants.context import StaffContext, TenantContext
from tenants.organizations import system_context, tenant_by_id
from tenants.permissions import StaffPermission
from tenants.staff_trail import record_staff_action

log = logging.getLogger(__name__)

S = SubscriptionStatus

#: How old a signed webhook may be (seconds), as Stripe's SDK counts by default: an older
#: one is a replay and is refused.
TOLERANCE_SECONDS = 300
#: Events left unprocessed this long (their job lost, say) are queued again by the sweep.
RETRY_AFTER = timedelta(minutes=10)
#: Failed attempts after which an event is a dead letter (processed, outcome "dead letter").
MAX_ATTEMPTS = 8

REFUSED = "The webhook was refused: its signature is missing, wrong or too old."
MALFORMED = "The webhook was refused: it is not a Stripe event."

#: The events Jalon acts on; any other is stored and marked processed, nothing more.
HANDLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
    }
)


class WebhookRefused(UserError):
    """A webhook that is not Stripe's, or no longer fresh: 400, and nothing stored."""

    status_code = 400


@dataclass(frozen=True)
class ReceivedEvent:
    """An event accepted into the inbox; `new` is false for a redelivery."""

    gateway: str
    event_id: str
    type: str
    created_at: datetime
    new: bool


def verify_stripe_event(
    payload: bytes, signature: str | None, secret: str | None, *, tolerance: int = TOLERANCE_SECONDS
) -> dict[str, Any]:
    """The event `payload` carries, once its `Stripe-Signature` header is checked against
    `secret` within `tolerance` seconds; `WebhookRefused` otherwise (and always without a
    configured secret: nothing is trusted unsigned)."""
    if not secret or not signature:
        raise WebhookRefused(REFUSED)
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        event = json.loads(text)
    except (UnicodeDecodeError, ValueError, stripe.SignatureVerificationError) as error:
        raise WebhookRefused(REFUSED) from error
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= 255
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookRefused(MALFORMED)
    return event


async def receive_stripe_webhook(
    payload: bytes, signature: str | None, secret: str | None
) -> ReceivedEvent:
    """Check a Stripe webhook and put it in the inbox; its processing is queued after
    commit, once per event id. `WebhookRefused` (nothing stored) when it does not check."""
    event = verify_stripe_event(payload, signature, secret)
    # the body as Stripe signed it (valid UTF-8 JSON by now): no second encoding
    return await dangerously_store_event("stripe", event, payload.decode("utf-8"))


def _job_id(gateway: str, event_id: str) -> str:
    return f"gateway_event:{gateway}:{event_id}"


async def dangerously_store_event(
    gateway: str, event: dict[str, Any], payload: str | None = None
) -> ReceivedEvent:
    """Insert a verified event into the global inbox (its tenant is not known yet: the job
    finds it), and queue its processing if it is new."""
    created_at = datetime.fromtimestamp(event["created"], UTC)
    async with global_transaction():
        rows = await fetch(
            """
            INSERT INTO gateway_event (gateway, event_id, type, created_at, payload)
            VALUES ($1, $2, $3, $4, $5::jsonb)
            ON CONFLICT (gateway, event_id) DO NOTHING
            RETURNING event_id
            """,
            gateway,
            event["id"],
            event["type"],
            created_at,
            json.dumps(event) if payload is None else payload,
        )
        if rows:
            after_commit(_waker(gateway, event["id"]))
    return ReceivedEvent(gateway, event["id"], event["type"], created_at, new=bool(rows))


#: Wake-ups under way: the queue's enqueue (a few Redis round trips) runs beside the
#: acknowledgement rather than before it. The inbox row is the durable part: a wake-up lost
#: with its process is made up for by `retry_gateway_events`.
_waking: set[asyncio.Task[None]] = set()


def _waker(gateway: str, event_id: str) -> Callable[[], Awaitable[None]]:
    async def send() -> None:
        try:
            await get_queue().enqueue(
                "process_gateway_event", gateway, event_id, job_id=_job_id(gateway, event_id)
            )
        except Exception:
            log.exception("could not queue %s event %s; the sweep will", gateway, event_id)

    async def spawn() -> None:
        task = asyncio.create_task(send())
        _waking.add(task)
        task.add_done_callback(_waking.discard)

    return spawn


async def wakeups_sent() -> None:
    """Wait until every processing job of the events received so far is queued."""
    while _waking:
        await asyncio.gather(*list(_waking))


# -- processing -------------------------------------------------------------------------

_stripe: StripeGateway | None = None


def use_stripe_gateway(gateway: StripeGateway | None) -> None:
    """The Stripe gateway the jobs read subscriptions through (None: the configured one)."""
    global _stripe
    _stripe = gateway


def stripe_gateway() -> StripeGateway:
    return _stripe or StripeGateway.from_settings(get_settings())


@dataclass(frozen=True)
class Outcome:
    """What processing an event did, as the inbox records it."""

    event_id: str
    outcome: str
    tenant_id: UUID | None = None


async def dangerously_pending_event(gateway: str, event_id: str) -> dict[str, Any] | None:
    """The payload of an inbox event not processed yet (None: unknown or done)."""
    async with global_transaction():
        rows = await fetch(
            "SELECT payload FROM gateway_event"
            " WHERE gateway = $1 AND event_id = $2 AND processed_at IS NULL",
            gateway,
            event_id,
        )
    if not rows:
        return None
    payload = rows[0]["payload"]
    return json.loads(payload) if isinstance(payload, str) else dict(payload)


async def dangerously_tenant_of_customer(gateway: str, customer_id: str) -> UUID | None:
    """The organization whose gateway customer this is (the map `ensure_customer` keeps)."""
    async with global_transaction():
        rows = await fetch(
            "SELECT organization_id FROM gateway_customer WHERE gateway = $1 AND customer_id = $2",
            gateway,
            customer_id,
        )
    return rows[0]["organization_id"] if rows else None


async def dangerously_finish_event(gateway: str, event_id: str, outcome: str) -> None:
    """Mark an event that concerns no tenant as processed, with why."""
    async with global_transaction():
        await execute(
            """
            UPDATE gateway_event SET processed_at = $3, outcome = $4
            WHERE gateway = $1 AND event_id = $2 AND processed_at IS NULL
            """,
            gateway,
            event_id,
            datetime.now(UTC),
            outcome[:500],
        )


def _id_of(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def customer_of(event: dict[str, Any]) -> str | None:
    """The Stripe customer an event concerns."""
    return _id_of(event["data"]["object"].get("customer"))


def subscription_of(event: dict[str, Any]) -> str | None:
    """The Stripe subscription an event concerns, if any."""
    obj = event["data"]["object"]
    kind = event["type"]
    if kind.startswith("customer.subscription."):
        return _id_of(obj.get("id"))
    if kind.startswith("checkout.session."):
        return _id_of(obj.get("subscription"))
    if kind.startswith("invoice."):
        parent = obj.get("parent") or {}
        details = parent.get("subscription_details") or {}
        return _id_of(details.get("subscription")) or _id_of(obj.get("subscription"))
    return None


async def dangerously_count_failure(gateway: str, event_id: str, error: Exception) -> str | None:
    """Count a failed attempt at an event, its error as its outcome; after `MAX_ATTEMPTS`
    the event is a dead letter (processed, never queued again): its outcome then, else
    None."""
    now = datetime.now(UTC)
    async with global_transaction():
        rows = await fetch(
            """
            UPDATE gateway_event SET attempts = attempts + 1,
                processed_at = CASE WHEN attempts + 1 >= $3 THEN $4::timestamptz END,
                outcome = left(CASE WHEN attempts + 1 >= $3
                    THEN 'dead letter after ' || (attempts + 1) || ' attempts: ' || $5
                    ELSE 'attempt ' || (attempts + 1) || ' failed: ' || $5 END, 500)
            WHERE gateway = $1 AND event_id = $2 AND processed_at IS NULL
            RETURNING processed_at, outcome
            """,
            gateway,
            event_id,
            MAX_ATTEMPTS,
            now,
            f"{type(error).__name__}: {error}"[:400],
        )
    if rows and rows[0]["processed_at"] is not None:
        return str(rows[0]["outcome"])
    return None


async def process_stripe_event(event_id: str, gateway: StripeGateway | None = None) -> Outcome:
    """Apply one inbox event (see the module's documentation); safe to run any number of
    times, in any order with the others. An attempt that fails (a Stripe read, a payload
    Jalon cannot apply) is counted and raises (the job, then the sweep, retry); the
    `MAX_ATTEMPTS`-th failure makes the event a dead letter instead."""
    try:
        return await _process_stripe_event(event_id, gateway)
    except Exception as error:
        dead = await dangerously_count_failure("stripe", event_id, error)
        if dead is None:
            raise
        log.error("stripe event %s set aside: %s", event_id, dead)
        return Outcome(event_id, dead)


async def _process_stripe_event(event_id: str, gateway: StripeGateway | None) -> Outcome:
    event = await dangerously_pending_event("stripe", event_id)
    if event is None:
        return Outcome(event_id, "already processed")
    if event["type"] not in HANDLED:
        await dangerously_finish_event("stripe", event_id, "not handled")
        return Outcome(event_id, "not handled")
    customer = customer_of(event)
    tenant_id = await dangerously_tenant_of_customer("stripe", customer) if customer else None
    if tenant_id is None:
        await dangerously_finish_event("stripe", event_id, "ignored: unknown customer")
        return Outcome(event_id, "ignored: unknown customer")
    state: StripeSubscriptionState | None = None
    read_at = datetime.now(UTC)
    subscription_id = subscription_of(event)
    if subscription_id:
        try:
            state = await (gateway or stripe_gateway()).fetch_subscription(subscription_id)
        except GatewayObjectMissing:
            state = None
    ctx = system_context(await tenant_by_id(tenant_id), "stripe")
    async with tenant_transaction(ctx):
        claimed = await fetch(
            """
            UPDATE gateway_event SET processed_at = $2, organization_id = $3
            WHERE gateway = 'stripe' AND event_id = $1 AND processed_at IS NULL
            RETURNING event_id
            """,
            event_id,
            datetime.now(UTC),
            tenant_id,
        )
        if not claimed:
            return Outcome(event_id, "already processed", tenant_id)
        if state is None:
            outcome = "no subscription to apply" if subscription_id is None else "gone on Stripe"
        else:
            outcome = await _apply_subscription(ctx, event, state, read_at)
        if event["type"] in ("invoice.finalized", "invoice.paid"):
            outcome += "; " + await _mirror_invoice(ctx, event, read_at)
        await execute(
            "UPDATE gateway_event SET outcome = $2 WHERE gateway = 'stripe' AND event_id = $1",
            event_id,
            outcome[:500],
        )
    if state is not None:
        # after commit: no transaction waits on Stripe
        await bill_overage_on_stripe(ctx, gateway or stripe_gateway(), state.id)
    return Outcome(event_id, outcome, tenant_id)


async def bill_overage_on_stripe(
    ctx: TenantContext, gateway: StripeGateway, subscription_id: str
) -> int:
    """Put the overage seats of the periods a Stripe subscription has finished (`bill`
    policy; `billing.seats.unbilled_overage` before Jalon's current period, which the
    webhooks keep on Stripe's) on Stripe as invoice items, which Stripe bills on the
    subscription's next invoice; each recorded billed after Stripe made it. Idempotent: the
    item's idempotency key is the subscription, the period's start and the seats already
    billed, so a replayed or duplicated webhook, or a run that died before recording the
    item, gets Stripe's first item back instead of a second one. A refusal is logged and
    left for the subscription's next event. How many items were made."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT current_period_start, gateway_customer_id, gateway_subscription_id,
                      status, gateway
               FROM subscription WHERE tenant_id = $1""",
            ctx.tenant_id,
        )
        if not rows:
            return 0
        row = rows[0]
        if (
            row["gateway"] != "stripe"
            or row["gateway_subscription_id"] != subscription_id
            or row["status"] == S.CANCELED
            or not row["gateway_customer_id"]
        ):
            return 0
        owed = await seats.unbilled_overage(ctx, row["current_period_start"])
        billable = await invoices._billable(ctx.tenant_id) if owed else None
    if not owed or billable is None:
        return 0
    until = row["current_period_start"]
    made = 0
    for overage, line in invoices.overage_charges(
        owed, invoices.overage_seat_price(billable), until
    ):
        stamp = int(overage.period_start.timestamp())
        try:
            if line is not None:
                await gateway.bill_overage(
                    ctx,
                    customer_id=row["gateway_customer_id"],
                    subscription_id=subscription_id,
                    currency=billable.currency,
                    seats=line.quantity,
                    unit_amount=line.unit_amount,
                    period=(overage.period_start, line.period_end or until),
                    description=line.description,
                    idempotency_key=f"jalon-overage-{subscription_id}-{stamp}-{overage.billed}",
                )
                made += 1
        except GatewayError:
            log.exception("Stripe refused %s's overage; the next event retries", ctx.tenant.slug)
            return made
        async with tenant_transaction(ctx):
            await seats.mark_overage_billed(ctx, [overage])
    return made


async def _apply_subscription(
    ctx: TenantContext, event: dict[str, Any], state: StripeSubscriptionState, read_at: datetime
) -> str:
    """Apply Stripe's subscription as read at `read_at` to the tenant's subscription."""
    rows = await fetch(
        """
        SELECT id, plan_id, status, gateway_subscription_id, gateway_synced_at,
            current_period_start, current_period_end
        FROM subscription WHERE tenant_id = $1 FOR UPDATE
        """,
        ctx.tenant_id,
    )
    if not rows:
        return "ignored: no subscription"
    row = rows[0]
    linked = row["gateway_subscription_id"]
    if linked not in (None, state.id) and event["type"] != "checkout.session.completed":
        return f"ignored: another subscription than {linked}"
    if row["gateway_synced_at"] is not None and read_at < row["gateway_synced_at"]:
        return "stale: a later read was applied"
    plan_id = row["plan_id"]
    category: str | None = None
    if state.plan_id:
        known = await fetch("SELECT id FROM plan WHERE id = $1::uuid", state.plan_id)
        if known:
            plan_id, category = known[0]["id"], state.price_category
    kind = (await fetch("SELECT kind FROM plan WHERE id = $1", plan_id))[0]["kind"]
    start, end = state.current_period_start, state.current_period_end
    if start is None or end is None or end <= start:
        start, end = row["current_period_start"], row["current_period_end"]
    await execute(
        """
        UPDATE subscription
        SET gateway = 'stripe', gateway_customer_id = $2, gateway_subscription_id = $3,
            gateway_synced_at = $4, plan_id = $5,
            price_category = coalesce($6, price_category),
            quantity = coalesce($7, quantity),
            current_period_start = $8, current_period_end = $9, trial_end = $10,
            cancel_at_period_end = $11, updated_at = $4
        WHERE tenant_id = $1
        """,
        ctx.tenant_id,
        state.customer_id,
        state.id,
        read_at,
        plan_id,
        category,
        # a seat pack or a licence is one unit on Stripe: Jalon's count stays (and so it
        # does for a count Jalon would refuse, rather than a job failing for ever)
        state.quantity if kind == "per_seat" and 0 <= state.quantity <= MAX_SEATS else None,
        start,
        end,
        state.trial_end,
        state.cancel_at_period_end,
    )
    if state.status is None:
        return f"synced ({state.stripe_status}: status unchanged)"
    current, target = SubscriptionStatus(row["status"]), SubscriptionStatus(state.status)
    reason = f"stripe:{event['type']}:{event['id']}"
    try:
        # Into and out of arrears through dunning, which tells the tenant's admins (once per
        # episode, whichever event shows it first); any other change is a plain transition.
        if target == S.PAST_DUE and current in (S.TRIALING, S.ACTIVE):
            await dunning.payment_failed(ctx, at=read_at, amount=_amount(event), reason=reason)
        elif target == S.ACTIVE and current in (S.PAST_DUE, S.SUSPENDED):
            await dunning.payment_succeeded(ctx, at=read_at, reason=reason)
        else:
            await transition(ctx, target, reason=reason, at=read_at)
    except Conflict:
        return f"synced; {current.value} cannot become {target.value}"
    return f"synced: {target.value}"


async def _mirror_invoice(ctx: TenantContext, event: dict[str, Any], at: datetime) -> str:
    """Jalon's own record of a Stripe invoice: drafted from Stripe's lines (Jalon's VAT, the
    rate Stripe was given: `StripeGateway.tax_rate_ids`), numbered in Jalon's series when
    Stripe finalized it, and paid with what Stripe collected. Once per Stripe invoice (its
    billing key), whichever of its events comes first."""
    obj = event["data"]["object"]
    if obj.get("status") in ("draft", "void") or not obj.get("id"):
        return f"invoice {obj.get('status')}: not mirrored"
    key = f"stripe:{obj['id']}"
    rows = await fetch(
        "SELECT id FROM invoice WHERE tenant_id = $1 AND billing_key = $2", ctx.tenant_id, key
    )
    if rows:
        invoice = await invoices.load_invoice(ctx.tenant_id, rows[0]["id"])
    else:
        invoice = await _mirror_new_invoice(ctx, obj, key)
    outcome = f"invoice {invoice.number}"
    if invoice.total != obj.get("total"):
        log.warning(
            "Stripe invoice %s: total %s, Jalon's %s", obj["id"], obj.get("total"), invoice.total
        )
        outcome += f" (Stripe's total {obj.get('total')} differs)"
    paid = obj.get("amount_paid")
    # never more than Jalon's invoice still owes (overpayments are refused): a total that
    # differs is logged above, and the job must not fail on it for ever
    due = invoice.total - invoice.amount_paid
    collected = min(paid, due) if isinstance(paid, int) and paid > 0 else 0
    if event["type"] == "invoice.paid" and invoice.status == "open" and collected > 0:
        await invoices.apply_payment(
            ctx,
            invoice.id,
            amount=collected,
            method="card",
            reference=obj["id"],
            received_on=at.date(),
            at=at,
        )
        outcome += " paid"
    return outcome


async def _mirror_new_invoice(
    ctx: TenantContext, obj: dict[str, Any], key: str
) -> invoices.Invoice:
    subscriptions = await fetch("SELECT id FROM subscription WHERE tenant_id = $1", ctx.tenant_id)
    lines = [_line_input(line) for line in (obj.get("lines") or {}).get("data", [])]
    if not lines:
        lines = [invoices.LineInput("subscription", "Subscription", 1, int(obj["subtotal"]))]
    start, end = moment_of(obj.get("period_start")), moment_of(obj.get("period_end"))
    draft = await invoices.insert_draft(
        ctx,
        lines,
        currency=str(obj["currency"]).upper(),
        subscription_id=subscriptions[0]["id"] if subscriptions else None,
        billing_key=key,
        period=(start, end) if start and end and end > start else None,
        collection_method=(
            "automatic"
            if obj.get("collection_method") == "charge_automatically"
            else "send_invoice"
        ),
        gateway="stripe",
    )
    await execute(
        "UPDATE invoice SET gateway_invoice_id = $3 WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        draft.id,
        obj["id"],
    )
    transitions = obj.get("status_transitions") or {}
    issued = moment_of(transitions.get("finalized_at") or obj["created"]) or datetime.now(UTC)
    due = moment_of(obj.get("due_date"))
    days = max(0, (due - issued).days) if due else 0
    return await invoices.issue_draft(ctx, draft.id, at=issued, net_terms_days=days)


def _line_input(line: dict[str, Any]) -> invoices.LineInput:
    quantity = int(line.get("quantity") or 1)
    amount = int(line["amount"])
    pricing = line.get("pricing") or {}
    unit = pricing.get("unit_amount_decimal")
    unit_amount = int(Decimal(unit)) if unit is not None else amount // max(quantity, 1)
    period = line.get("period") or {}
    return invoices.LineInput(
        kind="subscription",
        description=str(line.get("description") or "Subscription")[:500],
        quantity=quantity,
        unit_amount=unit_amount,
        amount=amount,
        period_start=moment_of(period.get("start")),
        period_end=moment_of(period.get("end")),
    )


def _amount(event: dict[str, Any]) -> Money | None:
    """What an invoice event says is due, when it is one."""
    obj = event["data"]["object"]
    if not event["type"].startswith("invoice.") or not isinstance(obj.get("amount_due"), int):
        return None
    try:
        return Money(obj["amount_due"], str(obj.get("currency") or "").upper())
    except UserError:
        return None


@job
async def process_gateway_event(ctx: dict[str, Any], gateway: str, event_id: str) -> str:
    """Apply one inbox event (the webhook endpoint queues it once per event id)."""
    if gateway != "stripe":
        raise ValueError(f"no webhook processing for gateway {gateway!r}")
    outcome = await process_stripe_event(event_id)
    return outcome.outcome


async def dangerously_unprocessed_events(older_than: datetime) -> list[tuple[str, str]]:
    """Inbox events still unprocessed since before `older_than` (their job lost)."""
    async with global_transaction():
        rows = await fetch(
            """
            SELECT gateway, event_id FROM gateway_event
            WHERE processed_at IS NULL AND received_at < $1
            ORDER BY attempts, received_at LIMIT 1000
            """,
            older_than,
        )
    return [(row["gateway"], row["event_id"]) for row in rows]


@every(15)
async def retry_gateway_events(ctx: dict[str, Any]) -> int:
    """Queue again the events whose processing was lost (a worker that died, Redis flushed)."""
    pending = await dangerously_unprocessed_events(datetime.now(UTC) - RETRY_AFTER)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    for gateway, event_id in pending:
        await get_queue().enqueue(
            "process_gateway_event",
            gateway,
            event_id,
            job_id=f"{_job_id(gateway, event_id)}:retry:{stamp}",
        )
    return len(pending)


# -- the back office ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """An inbox event set aside after `MAX_ATTEMPTS` failed attempts, with its last error."""

    gateway: str
    event_id: str
    type: str
    attempts: int
    outcome: str
    organization_id: UUID | None
    received_at: datetime
    processed_at: datetime


#: How a dead letter's outcome begins (`dangerously_count_failure`).
DEAD_LETTER = "dead letter after "
UNKNOWN_EVENT = "Unknown event, or not a dead letter (it may have been processed since)."


async def dangerously_dead_letters(staff: StaffContext, limit: int = 100) -> list[DeadLetter]:
    """The `limit` most recent dead letters of the inbox (a global table), newest first."""
    staff.require(StaffPermission.TENANTS_READ)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            """
            SELECT gateway, event_id, type, attempts, outcome, organization_id, received_at,
                processed_at
            FROM gateway_event
            WHERE processed_at IS NOT NULL AND attempts >= $1 AND starts_with(outcome, $2)
            ORDER BY processed_at DESC, event_id DESC LIMIT $3
            """,
            MAX_ATTEMPTS,
            DEAD_LETTER,
            limit,
        )
    return [DeadLetter(**row) for row in rows]


async def dangerously_retry_event(staff: StaffContext, gateway: str, event_id: str) -> None:
    """Give a dead letter a fresh round of attempts: unprocessed again with no attempt
    counted, its processing queued after commit (and the sweep retries it, as any pending
    event). Audited in the staff trail (`gateway_event.retried`). `NotFound` for an event
    that is not a dead letter."""
    staff.require(StaffPermission.TENANTS_MANAGE)
    async with global_transaction(staff.user_id):
        rows = await fetch(
            """
            UPDATE gateway_event SET processed_at = NULL, attempts = 0,
                outcome = left('retried by staff; was: ' || outcome, 500)
            WHERE gateway = $1 AND event_id = $2 AND processed_at IS NOT NULL
                AND attempts >= $3 AND starts_with(outcome, $4)
            RETURNING type, organization_id
            """,
            gateway,
            event_id,
            MAX_ATTEMPTS,
            DEAD_LETTER,
        )
        if not rows:
            raise NotFound(UNKNOWN_EVENT)
        await record_staff_action(
            staff,
            "gateway_event.retried",
            "gateway_event",
            f"{gateway}:{event_id}",
            tenant_id=rows[0]["organization_id"],
            type=rows[0]["type"],
        )
        enqueue(
            "process_gateway_event",
            gateway,
            event_id,
            job_id=f"{_job_id(gateway, event_id)}:staff:{uuid4()}",
        )
