"""Dunning scenarios, end to end: a bank-transfer invoice issued, overdue, then paid; a
suspension after the grace period, then reactivation; a failed card payment; and the hourly
sweep. Every step run twice sends nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from billing import dunning, invoices
from billing.gateways.manual import ManualGateway
from billing.jobs import queue_dunning
from billing.payments import invoice_id_by_number, parse_amount, record_payment
from billing.subscriptions import current_subscription, subscribe
from core.database import fetch
from core.errors import Conflict, Forbidden, Invalid
from core.mail import recent_mail
from core.settings import get_settings
from tenants.context import Actor, StaffContext, TenantContext
from tenants.organizations import system_context
from tenants.permissions import staff_permissions_of
from tests.billing.plans import per_seat_plan
from tests.billing.test_invoices import set_profile
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def system(tenant: TenantFixture) -> TenantContext:
    return system_context(tenant.owner_ctx.tenant, "tests")


def account_manager(tenant: TenantFixture, role: str = "account_manager") -> StaffContext:
    person = tenant.owner  # any real person will do: the audit log names them
    return StaffContext(
        actor=Actor(kind="staff", user_id=person.id, label="am@jalon.example.org"),
        role=role,
        permissions=staff_permissions_of(role),
    )


async def billed(
    tenant: TenantFixture, *, at: datetime = NOW, gateway: str = "manual", seat_price: int = 1000
) -> tuple[invoices.Invoice, str]:
    """A per-seat subscription (5 seats) invoiced by bank transfer (30 days) at `at`; the
    invoice and the billing email it is mailed to."""
    plan = await per_seat_plan(seat_price, trial_days=0)
    collection = "send_invoice" if gateway == "manual" else "automatic"
    await subscribe(
        tenant.owner_ctx,
        plan.code,
        at=at,
        quantity=5,
        trial=False,
        gateway=gateway,
        collection_method=collection,
    )
    email = f"compta-{uuid4().hex[:8]}@example.org"
    await set_profile(tenant, billing_email=email)
    invoice = await invoices.bill_period(tenant.owner_ctx, at=at)
    assert invoice is not None
    return invoice, email


async def mail_to(email: str) -> list[str]:
    """Subjects of the mail queued to `email`, oldest first."""
    newest_first = [mail for mail in await recent_mail(500) if mail.to_address == email]
    return [mail.subject for mail in reversed(newest_first)]


async def status(tenant: TenantFixture) -> str | None:
    sub = await current_subscription(tenant.owner_ctx)
    return None if sub is None else sub.status.value


async def test_a_bank_transfer_invoice_issued_overdue_then_marked_paid(
    tenant_a: TenantFixture,
) -> None:
    invoice, email = await billed(tenant_a)
    assert invoice.due_on is not None
    due = datetime.combine(invoice.due_on, datetime.min.time(), UTC)
    ctx = system(tenant_a)

    on_time = await dunning.run_dunning(ctx, at=due + timedelta(hours=12))
    assert on_time == dunning.DunningOutcome("active")
    late = await dunning.run_dunning(ctx, at=due + timedelta(days=1, hours=1))
    again = await dunning.run_dunning(ctx, at=due + timedelta(days=1, hours=2))
    assert late == dunning.DunningOutcome("past_due", ("overdue",))
    assert again == dunning.DunningOutcome("past_due")
    reminder = await dunning.run_dunning(ctx, at=due + timedelta(days=16))
    assert reminder.notices == ("reminder_15",)
    assert await mail_to(email) == [
        f"Invoice {invoice.number} from {invoice.seller.name}",  # issued, with its link
        f"Invoice {invoice.number} is overdue",
        f"Invoice {invoice.number} is overdue",
    ]

    assert invoice.number is not None
    invoice_id = await invoice_id_by_number(ctx, invoice.number)
    half = parse_amount("33", "EUR")
    first = await record_payment(
        ctx, account_manager(tenant_a), invoice_id, amount=half, reference="VIR 1"
    )
    assert first.invoice.status == "open"
    assert await status(tenant_a) == "past_due"
    rest = await record_payment(
        ctx,
        account_manager(tenant_a),
        invoice_id,
        amount=invoice.total - half,
        reference="VIR 2",
        at=due + timedelta(days=17),
    )
    twice = await record_payment(
        ctx, account_manager(tenant_a), invoice_id, amount=1, reference="VIR 2"
    )
    assert rest.invoice.status == "paid"
    assert rest.invoice.amount_paid == invoice.total == 6000
    assert twice.payment is None
    assert twice.invoice.amount_paid == invoice.total
    assert await status(tenant_a) == "active"
    assert (await mail_to(email))[
        -1
    ] == f"Subscription active again for {tenant_a.owner_ctx.tenant.name}"
    async with as_tenant(tenant_a.id):
        actions = [
            row["action"]
            for row in await fetch(
                "SELECT action FROM audit_event WHERE tenant_id = $1 ORDER BY occurred_at",
                tenant_a.id,
            )
        ]
    assert actions.count("billing.payment.recorded") == 2
    assert "billing.subscription.past_due" in actions
    assert "billing.subscription.active" in actions


async def test_unpaid_past_the_grace_period_suspends_then_payment_reactivates(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    invoice, email = await billed(tenant_a)
    assert invoice.due_on is not None
    due = datetime.combine(invoice.due_on, datetime.min.time(), UTC)
    ctx = system(tenant_a)
    late = due + timedelta(days=dunning.TRANSFER_GRACE_DAYS, hours=1)
    outcome = await dunning.run_dunning(ctx, at=late)
    # the sweep missed every earlier day: only the latest reminder goes out, then suspension
    assert outcome == dunning.DunningOutcome("suspended", ("final_45", "suspended"))
    assert await dunning.run_dunning(ctx, at=late) == dunning.DunningOutcome("suspended")
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert not sub.in_good_standing
    assert len(await mail_to(email)) == 3  # the invoice, the last reminder, the suspension
    assert await status(tenant_b) is None  # the other tenant is untouched

    await record_payment(
        ctx,
        account_manager(tenant_a),
        str(invoice.id),
        amount=invoice.total,
        reference="VIR LATE",
        at=late,
    )
    assert await status(tenant_a) == "active"
    assert (await dunning.run_dunning(ctx, at=late + timedelta(days=1))).notices == ()


async def test_a_voided_overdue_invoice_lifts_the_dunning(tenant_a: TenantFixture) -> None:
    invoice, _ = await billed(tenant_a)
    assert invoice.due_on is not None
    late = datetime.combine(invoice.due_on, datetime.min.time(), UTC) + timedelta(days=2)
    ctx = system(tenant_a)
    assert (await dunning.run_dunning(ctx, at=late)).status == "past_due"
    await invoices.credit_invoice(ctx, invoice.id, reason="billed in error")
    assert (await dunning.run_dunning(ctx, at=late)).status == "active"


async def test_a_failed_card_payment_reminds_suspends_and_recovers(
    tenant_a: TenantFixture,
) -> None:
    _, email = await billed(tenant_a, gateway="stripe")
    ctx = system(tenant_a)
    failed = await dunning.payment_failed(ctx, at=NOW, reason="card_declined")
    assert failed == dunning.DunningOutcome("past_due", ("failed",))
    assert await dunning.payment_failed(ctx, at=NOW) == dunning.DunningOutcome("past_due")
    week = await dunning.run_dunning(ctx, at=NOW + timedelta(days=7, hours=1))
    assert week.notices == ("reminder_7",)
    end = await dunning.run_dunning(ctx, at=NOW + timedelta(days=dunning.CARD_GRACE_DAYS))
    assert end == dunning.DunningOutcome("suspended", ("final_14", "suspended"))
    paid = await dunning.payment_succeeded(ctx, at=NOW + timedelta(days=22))
    assert paid == dunning.DunningOutcome("active", ("reactivated",))
    assert await dunning.payment_succeeded(ctx, at=NOW + timedelta(days=22)) == (
        dunning.DunningOutcome("active")
    )
    subjects = await mail_to(email)
    assert len(subjects) == 5  # Stripe mails its own invoices: only the dunning here
    assert subjects[0] == f"Payment failed for {tenant_a.owner_ctx.tenant.name}"


async def test_only_our_staff_or_the_system_record_payments(tenant_a: TenantFixture) -> None:
    invoice, _ = await billed(tenant_a)
    with pytest.raises(Forbidden):
        await record_payment(tenant_a.owner_ctx, None, str(invoice.id), amount=100)
    with pytest.raises(Forbidden):
        await record_payment(
            system(tenant_a), account_manager(tenant_a, "support"), str(invoice.id), amount=100
        )
    with pytest.raises(Invalid):
        await record_payment(system(tenant_a), None, str(invoice.id), amount=0)
    with pytest.raises(Invalid):
        parse_amount("12.345", "EUR")
    assert parse_amount("1200,50", "EUR") == 120050
    made_up = replace(system(tenant_a))
    applied = await record_payment(made_up, None, str(invoice.id), amount=100, method="card")
    assert applied.payment is not None
    assert applied.payment.method == "card"


async def test_the_manual_gateway_issues_and_mails_the_invoice(tenant_a: TenantFixture) -> None:
    await set_profile(tenant_a, billing_email="ap@alpha.example.org")
    with pytest.raises(Forbidden):  # an admin does not invent invoices
        await invoices.draft_invoice(
            tenant_a.owner_ctx,
            [invoices.LineInput("adjustment", "Gift", 1, -100)],
            currency="EUR",
        )
    draft = await invoices.draft_invoice(
        system(tenant_a),
        [invoices.LineInput("adjustment", "Onboarding day", 1, 90_000)],
        currency="EUR",
    )
    gateway = ManualGateway(get_settings())
    with pytest.raises(Forbidden):  # nor issues one through the gateway
        await gateway.issue_invoice(tenant_a.owner_ctx, draft)
    await gateway.issue_invoice(system(tenant_a), draft)
    await gateway.issue_invoice(system(tenant_a), draft)  # a retried job mails no one twice
    issued = await invoices.get_invoice(tenant_a.owner_ctx, draft.id)
    assert issued.status == "open"
    assert issued.number is not None
    subjects = await mail_to("ap@alpha.example.org")
    assert subjects == [f"Invoice {issued.number} from {issued.seller.name}"]
    owner_mail = await mail_to(tenant_a.owner.email)
    assert f"Invoice {issued.number} from {issued.seller.name}" in owner_mail
    assert await gateway.checkout_url(tenant_a.owner_ctx, None, None, "", "") is None  # type: ignore[arg-type]


async def test_the_hourly_sweep_queues_the_tenants_that_need_dunning(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await billed(tenant_a, at=long_ago)  # due 10 days ago
    await billed(tenant_b)  # not due yet
    held.held.clear()
    await queue_dunning(datetime.now(UTC))
    queued = [args for name, args in held.held if name == "dunning_tenant"]
    assert (str(tenant_a.id),) in queued
    assert (str(tenant_b.id),) not in queued
    held.held = [(name, args) for name, args in held.held if args == (str(tenant_a.id),)]
    await held.run()
    await held.run()  # mail delivery jobs
    assert await status(tenant_a) == "past_due"
    assert await status(tenant_b) == "active"


async def jalon(owner_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`jalon billing record-payment …`, run as an operator would. In a thread: this test's
    event loop keeps running its in-process jobs (a mail's delivery may be between its UPDATE
    and its COMMIT, and on Citus a write to `mail_message`, a reference table, would wait for
    it: the command would hang)."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # jobs in-process
    env["DATABASE_URL"] = owner_url
    command = [sys.executable, "-m", "api.cli", "billing", "record-payment", *options]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def test_an_account_manager_records_a_transfer_from_the_command_line(
    owner_url: str, tenant_a: TenantFixture
) -> None:
    invoice, _ = await billed(tenant_a, at=datetime.now(UTC) - timedelta(days=45))
    assert (await dunning.run_dunning(system(tenant_a), at=datetime.now(UTC))).status == "past_due"
    options = ["--tenant", tenant_a.slug, "--invoice", str(invoice.number), "--amount", "60.00"]
    result = await jalon(
        owner_url, *options, "--reference", "VIR-CLI-1", "--received-on", "2026-12-01"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "invoice": invoice.number,
        "status": "paid",
        "total": 6000,
        "paid": 6000,
        "currency": "EUR",
        "recorded": True,
    }
    assert await status(tenant_a) == "active"
    wrong = await jalon(owner_url, *options[:4], "--amount", "12.345", "--reference", "VIR-CLI-2")
    assert wrong.returncode == 2
    assert "amount" in wrong.stderr


async def test_an_invoice_of_nothing_is_paid_when_issued_and_never_dunned(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    invoice, _ = await billed(tenant_a, seat_price=0, at=datetime.now(UTC) - timedelta(days=45))
    assert (invoice.total, invoice.status) == (0, "paid")
    assert invoice.paid_at == invoice.issued_at
    ctx = system(tenant_a)
    assert await dunning.run_dunning(ctx, at=datetime.now(UTC)) == dunning.DunningOutcome("active")
    held.held.clear()
    await queue_dunning(datetime.now(UTC))
    assert (str(tenant_a.id),) not in [args for name, args in held.held]


async def test_a_payment_on_a_paid_invoice_or_beyond_what_is_due_is_refused(
    tenant_a: TenantFixture,
) -> None:
    invoice, _ = await billed(tenant_a)
    ctx, staff, wanted = system(tenant_a), account_manager(tenant_a), str(invoice.id)
    with pytest.raises(Conflict, match="more than"):
        await record_payment(ctx, staff, wanted, amount=invoice.total + 1, reference="VIR A")
    part = await record_payment(ctx, staff, wanted, amount=invoice.total - 100, reference="VIR B")
    assert part.invoice.status == "open"
    with pytest.raises(Conflict, match="more than"):
        await record_payment(ctx, staff, wanted, amount=101, reference="VIR C")
    rest = await record_payment(ctx, staff, wanted, amount=100, reference="VIR D")
    assert (rest.invoice.status, rest.invoice.amount_paid) == ("paid", invoice.total)
    with pytest.raises(Conflict, match="paid already"):
        await record_payment(ctx, staff, wanted, amount=1, reference="VIR E")
    again = await record_payment(ctx, staff, wanted, amount=100, reference="VIR D")
    assert again.payment is None  # the same statement line imported twice: still once
    assert again.invoice.amount_paid == invoice.total


async def test_a_bank_transfer_needs_its_reference(tenant_a: TenantFixture) -> None:
    invoice, _ = await billed(tenant_a)
    with pytest.raises(Invalid) as refused:
        await record_payment(system(tenant_a), None, str(invoice.id), amount=100)
    assert refused.value.field == "reference"
    with pytest.raises(Invalid):
        await record_payment(system(tenant_a), None, str(invoice.id), amount=100, reference=" ")


async def test_a_partly_paid_invoice_is_not_credited_before_a_refund(
    tenant_a: TenantFixture,
) -> None:
    invoice, _ = await billed(tenant_a)
    ctx = system(tenant_a)
    await record_payment(ctx, None, str(invoice.id), amount=1000, reference="VIR PART")
    with pytest.raises(Conflict, match="refund"):
        await invoices.credit_invoice(ctx, invoice.id, reason="billed in error")
    kept = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert (kept.status, kept.amount_paid) == ("open", 1000)


async def test_recording_a_payment_locks_the_subscription_before_the_invoice(
    owner_url: str, tenant_a: TenantFixture
) -> None:
    """The webhook job locks the subscription, then the invoice: a payment recorded at the
    same time takes them in the same order, so neither waits for the other for ever."""
    invoice, _ = await billed(tenant_a)
    webhook = await asyncpg.connect(owner_url)
    paying: asyncio.Task[object] | None = None
    try:
        async with webhook.transaction():
            await webhook.execute(
                "SELECT 1 FROM subscription WHERE tenant_id = $1 FOR UPDATE", tenant_a.id
            )
            paying = asyncio.create_task(
                record_payment(
                    system(tenant_a),
                    None,
                    str(invoice.id),
                    amount=invoice.total,
                    reference="VIR LOCK",
                )
            )
            # on a Citus cluster the row lock is waited for on a worker: its view of every node
            views = ["pg_stat_activity"]
            if await webhook.fetchval("SELECT to_regclass('citus_stat_activity')"):
                views.append("citus_stat_activity")
            waiting = 0
            for _ in range(6000):  # until the payment waits (a bound, not a timing)
                for view in views:
                    waiting += await webhook.fetchval(
                        f"""SELECT count(*) FROM {view} WHERE datname = current_database()
                            AND wait_event_type = 'Lock'"""  # noqa: S608
                    )
                if waiting or paying.done():
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the payment never waited for the subscription"
            assert not paying.done()
            # the payment waits for the subscription and holds no lock on the invoice yet
            await webhook.execute(
                "SELECT 1 FROM invoice WHERE tenant_id = $1 AND id = $2 FOR UPDATE NOWAIT",
                tenant_a.id,
                invoice.id,
            )
    finally:
        await webhook.close()
        if paying is not None:
            await paying
    assert (await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)).status == "paid"


async def test_the_command_line_refuses_bad_amounts_and_a_transfer_without_reference(
    owner_url: str, tenant_a: TenantFixture
) -> None:
    invoice, _ = await billed(tenant_a)
    target = ["--tenant", tenant_a.slug, "--invoice", str(invoice.number)]
    for amount, why in [
        ("1e999999999", "1200.50"),
        ("1,200", "ambiguous"),
        ("99999999999", "too large"),
        ("60.01", "more than"),
    ]:
        result = await jalon(owner_url, *target, "--amount", amount, "--reference", "VIR-BAD")
        assert result.returncode == 2, (amount, result.stderr)
        assert "Traceback" not in result.stderr
        assert why in result.stderr
    missing = await jalon(owner_url, *target, "--amount", "60.00")
    assert missing.returncode == 2
    assert "--reference is required" in missing.stderr
    kept = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert kept.amount_paid == 0
