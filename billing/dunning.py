"""Dunning: what happens when a tenant does not pay.

Two roads lead to `past_due`, each with its reminders and its grace period, after which the
subscription is `suspended` (campaigns take no new participants; nothing is deleted):

- a failed card or debit payment (the gateway calls `payment_failed`): a notice at once,
  reminders on days 7 and 14, suspension on day 21;
- a bank-transfer invoice Jalon issued that is still open after its due date (the periodic
  sweep finds it): past due the day after, reminders 15, 30 and 45 days after the due date,
  suspension after 60.

Payment makes the subscription `active` again (`settle`, `payment_succeeded`). Every notice
is recorded in `dunning_notice` before its mail is queued, in the same transaction, so a
sweep that runs twice (or two workers at once) sends nothing twice; when a sweep has missed
days, only the latest step reached is mailed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from billing import notices
from billing.money import Money
from billing.subscriptions import SubscriptionStatus, joined, transition
from core.database import fetch
from tenants import audit
from tenants.context import TenantContext

S = SubscriptionStatus

#: (days after the payment failed, step), then suspension.
CARD_STEPS: tuple[tuple[int, str], ...] = ((0, "failed"), (7, "reminder_7"), (14, "final_14"))
CARD_GRACE_DAYS = 21
#: (days after the due date, step), then suspension: public buyers pay slowly.
TRANSFER_STEPS: tuple[tuple[int, str], ...] = (
    (1, "overdue"),
    (15, "reminder_15"),
    (30, "reminder_30"),
    (45, "final_45"),
)
TRANSFER_GRACE_DAYS = 60


@dataclass(frozen=True)
class DunningOutcome:
    """What a dunning step did: the subscription's status after it (None without one) and
    the notices it sent (`step` names)."""

    status: str | None
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Subscription:
    id: UUID
    status: str
    gateway: str
    past_due_since: datetime | None


async def _subscription(ctx: TenantContext) -> _Subscription | None:
    rows = await fetch(
        """SELECT id, status, gateway, past_due_since FROM subscription
           WHERE tenant_id = $1 FOR UPDATE""",
        ctx.tenant_id,
    )
    if not rows:
        return None
    row = rows[0]
    return _Subscription(row["id"], row["status"], row["gateway"], row["past_due_since"])


async def _record_steps(
    ctx: TenantContext,
    subject: str,
    reached: Sequence[str],
    at: datetime,
    invoice_id: UUID | None = None,
) -> str | None:
    """Record every step of `reached` not yet recorded for `subject`; the latest one newly
    recorded (the one to mail), or None when all were recorded already."""
    newest = None
    for step in reached:
        rows = await fetch(
            """INSERT INTO dunning_notice (tenant_id, id, subject, step, invoice_id, sent_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (tenant_id, subject, step) DO NOTHING RETURNING id""",
            ctx.tenant_id,
            uuid4(),
            subject,
            step,
            invoice_id,
            at,
        )
        if rows:
            newest = step
    return newest


async def _suspend(ctx: TenantContext, sub: _Subscription, at: datetime, **why: Any) -> str:
    await transition(ctx, S.SUSPENDED, reason="dunning: grace period over", at=at)
    since = sub.past_due_since or at
    if await _record_steps(ctx, f"past_due:{since.isoformat()}", ["suspended"], at):
        await notices.send(ctx, notices.SUSPENDED, **why)
        return "suspended"
    return ""


async def payment_failed(
    ctx: TenantContext, *, at: datetime, amount: Money | None = None, reason: str = ""
) -> DunningOutcome:
    """A card or debit payment failed (the gateway says so): the subscription becomes
    `past_due` (a trial or active one; a suspended one stays suspended) and the tenant is
    told at once, then reminded on the sweep's schedule. Idempotent; joins an open
    transaction. Without a subscription, nothing happens."""
    async with joined(ctx):
        sub = await _subscription(ctx)
        if sub is None or sub.status == S.CANCELED:
            return DunningOutcome(sub.status if sub else None)
        if sub.status in (S.TRIALING, S.ACTIVE):
            updated = await transition(
                ctx, S.PAST_DUE, reason=f"payment failed: {reason}".strip(": "), at=at
            )
            sub = _Subscription(sub.id, updated.status, sub.gateway, updated.past_due_since)
        since = sub.past_due_since or at
        sent: tuple[str, ...] = ()
        if await _record_steps(ctx, f"past_due:{since.isoformat()}", ["failed"], at):
            deadline = since + timedelta(days=CARD_GRACE_DAYS)  # a moment, zone named
            await notices.send(ctx, notices.PAYMENT_FAILED, amount=amount or "—", deadline=deadline)
            await audit.record(ctx, "billing.dunning.notice", "subscription", sub.id, step="failed")
            sent = ("failed",)
        return DunningOutcome(sub.status, sent)


async def payment_succeeded(
    ctx: TenantContext, *, at: datetime, reason: str = ""
) -> DunningOutcome:
    """A payment came in (the gateway says so, or a bank transfer was recorded): a past-due
    or suspended subscription is `active` again and the tenant is told. Joins an open
    transaction; idempotent."""
    async with joined(ctx):
        sub = await _subscription(ctx)
        if sub is None:
            return DunningOutcome(None)
        return await _reactivate(ctx, sub, at, reason or "payment received")


async def _reactivate(
    ctx: TenantContext, sub: _Subscription, at: datetime, reason: str
) -> DunningOutcome:
    if sub.status not in (S.PAST_DUE, S.SUSPENDED):
        return DunningOutcome(sub.status)
    await transition(ctx, S.ACTIVE, reason=reason, at=at)
    since = sub.past_due_since or at
    sent: tuple[str, ...] = ()
    if await _record_steps(ctx, f"past_due:{since.isoformat()}", ["reactivated"], at):
        await notices.send(ctx, notices.REACTIVATED)
        sent = ("reactivated",)
    return DunningOutcome(S.ACTIVE.value, sent)


async def _overdue_invoices(ctx: TenantContext, today: date) -> list[dict[str, Any]]:
    return await fetch(
        """SELECT id, number, currency, total, amount_paid, due_on FROM invoice
           WHERE tenant_id = $1 AND status = 'open' AND kind = 'invoice'
             AND gateway = 'manual' AND due_on < $2 AND total > amount_paid
           ORDER BY due_on, number""",
        ctx.tenant_id,
        today,
    )


async def settle(ctx: TenantContext, *, at: datetime) -> DunningOutcome:
    """After a payment: when nothing Jalon invoiced is overdue any more, a past-due or
    suspended subscription is `active` again. Joins an open transaction."""
    async with joined(ctx):
        sub = await _subscription(ctx)
        if sub is None:
            return DunningOutcome(None)
        if await _overdue_invoices(ctx, at.astimezone(UTC).date()):
            return DunningOutcome(sub.status)
        return await _reactivate(ctx, sub, at, "overdue invoices paid")


def _reached(steps: Sequence[tuple[int, str]], days: int) -> list[str]:
    return [step for after, step in steps if days >= after]


async def run_dunning(ctx: TenantContext, *, at: datetime) -> DunningOutcome:
    """One tenant's dunning at `at`: overdue bank-transfer invoices make the subscription past
    due, reminders go out on schedule, the grace period's end suspends it, and a manual
    subscription whose overdue invoices were all paid or voided is active again. The
    periodic sweep runs it for every tenant; running it twice sends nothing twice."""
    today = at.astimezone(UTC).date()
    async with joined(ctx):
        sub = await _subscription(ctx)
        if sub is None or sub.status == S.CANCELED:
            return DunningOutcome(sub.status if sub else None)
        overdue = await _overdue_invoices(ctx, today)
        sent: list[str] = []
        if overdue:
            oldest = overdue[0]
            if sub.status in (S.TRIALING, S.ACTIVE):
                updated = await transition(
                    ctx, S.PAST_DUE, reason=f"invoice {oldest['number']} overdue", at=at
                )
                sub = _Subscription(sub.id, updated.status, sub.gateway, updated.past_due_since)
            for invoice in overdue:
                days = (today - invoice["due_on"]).days
                step = await _record_steps(
                    ctx, str(invoice["id"]), _reached(TRANSFER_STEPS, days), at, invoice["id"]
                )
                if step:
                    due = Money(invoice["total"] - invoice["amount_paid"], invoice["currency"])
                    deadline = invoice["due_on"] + timedelta(days=TRANSFER_GRACE_DAYS)
                    await notices.send(
                        ctx,
                        notices.OVERDUE,
                        number=invoice["number"],
                        amount=due,
                        due_on=invoice["due_on"],  # days, written in each reader's language
                        deadline=deadline,
                    )
                    await audit.record(
                        ctx, "billing.dunning.notice", "invoice", invoice["id"], step=step
                    )
                    sent.append(step)
            days_late = (today - oldest["due_on"]).days
            if days_late >= TRANSFER_GRACE_DAYS and sub.status == S.PAST_DUE:
                due = Money(oldest["total"] - oldest["amount_paid"], oldest["currency"])
                if await _suspend(ctx, sub, at, amount=due):
                    sent.append("suspended")
                sub = _Subscription(sub.id, S.SUSPENDED.value, sub.gateway, sub.past_due_since)
            return DunningOutcome(sub.status, tuple(sent))
        if sub.status not in (S.PAST_DUE, S.SUSPENDED):
            return DunningOutcome(sub.status)
        if sub.gateway == "manual":
            return await _reactivate(ctx, sub, at, "overdue invoices paid or voided")
        return await _card_schedule(ctx, sub, at)


async def _card_schedule(ctx: TenantContext, sub: _Subscription, at: datetime) -> DunningOutcome:
    since = sub.past_due_since or at
    days = (at - since).days
    subject = f"past_due:{since.isoformat()}"
    sent: list[str] = []
    reminders = [step for step in _reached(CARD_STEPS, days) if step != "failed"]
    step = await _record_steps(ctx, subject, reminders, at)
    if step:
        deadline = since + timedelta(days=CARD_GRACE_DAYS)  # a moment, zone named
        await notices.send(ctx, notices.PAYMENT_FAILED, amount="—", deadline=deadline)
        await audit.record(ctx, "billing.dunning.notice", "subscription", sub.id, step=step)
        sent.append(step)
    status = sub.status
    if days >= CARD_GRACE_DAYS and sub.status == S.PAST_DUE:
        if await _suspend(ctx, sub, at, amount="—"):
            sent.append("suspended")
        status = S.SUSPENDED.value
    return DunningOutcome(status, tuple(sent))
