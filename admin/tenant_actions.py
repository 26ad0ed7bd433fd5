"""The account managers' actions on one tenant, each a form with a required reason, then a
confirmation page, then the change (POST, post-redirect-get to the tenant's page):

- `/plan`: change the plan or the number of seats; the confirmation shows what
  `billing.changes.preview_change` will invoice (the proration) before it is applied;
- `/trial`: extend a trial by 1 to 90 days (`billing.subscriptions.extend_trial`);
- `/seat-pack`: add a pack of seats, invoiced at once if asked (`billing.seats.add_seat_pack`,
  `billing.invoices.bill_seat_pack`); `/seat-pack/{id}/remove` withdraws one, refused while the
  seats consumed this period need it (`billing.seats.withdraw_seat_pack`);
- `/discount`: a discount once, as a credit line on the next invoice (an amount, or a
  percentage of one period's price worked out to an amount; at most one period's price:
  `billing.changes.grant_discount`). The billing model keeps no recurring discount ("20 %
  for 3 months" would need a schema of its own): a discount for several periods is granted
  again at each one, and a credit on an invoice already issued is a credit note (below);
- `/credit-note/{invoice_id}`: a credit note of an amount (tax included) against an issued
  invoice, up to what is still due: the whole amount voids the invoice, a part of it is a
  partial credit note set against the invoice (`billing.invoices.credit_invoice_amount`);
- `/payment/{invoice_id}`: a bank transfer received (`billing.payments.record_payment`), its
  amount read by `billing.payments.parse_amount` ("1 200,50" and "1,200.50" alike, "1,200"
  refused as ambiguous);
- `/suspend`, `/reactivate` and `/close`: the organization's life with its subscription
  (`billing.changes.suspend_tenant`, `reactivate_tenant`, `close_tenant`). Closing asks
  for the slug typed and a retention period (90 days unless chosen between 30 and 365); it
  cancels the subscription at the end of its period (now when past due or suspended), and
  `/reactivate` reopens a closed organization until its `delete_after`;
- `/features`: the per-tenant features (`tenants.features`).

Money and billing need `staff:billing:manage`; the organization's life and its features
`staff:tenants:manage`. Every change runs in a context from
`acting_in_tenant(with_reason(staff, reason), tenant)`: the tenant's audit log and the staff
trail both record it, with the reason. Ids under another tenant's path are unknown (404).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from billing import changes, invoices, payments, seats, subscriptions
from billing.catalogue import PlanKind, active_offers, plan_price
from billing.money import Money
from core.errors import Conflict, Invalid, NotFound, UserError
from core.i18n import N_
from tenants import features as tenant_features
from tenants import organizations
from tenants.context import StaffContext, TenantContext, TenantSummary
from tenants.permissions import StaffPermission
from tenants.staff import acting_in_tenant, clean_reason, with_reason
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, locale_of, redirect, render, session_of

BILLING = {"permission": StaffPermission.BILLING_MANAGE}
TENANTS = {"permission": StaffPermission.TENANTS_MANAGE}
BASE = "/tenants/{tenant_id:uuid}/actions"

BAD_NUMBER = N_("Enter a whole number.")
BAD_DATE = N_("Enter a date as YYYY-MM-DD.")
FUTURE_DATE = N_("A payment cannot have been received in the future.")
OLD_DATE = N_("This date is too far in the past.")
CHOOSE_ONE = N_("Give either an amount or a percentage, not both.")
BAD_PERCENT = N_("A percentage is a whole number between 1 and 100.")
NO_CHANGE_ASKED = N_("Choose another plan or number of seats.")
PACK_NO_SUBSCRIPTION = N_(
    "This organization has no subscription: the pack cannot be invoiced now. Untick"
    " “Invoice this pack now” to add it without an invoice."
)
PACK_NOT_SEAT_PACK_PLAN = N_(
    "The plan {plan} is not a seat-pack plan: the pack cannot be invoiced now. Untick"
    " “Invoice this pack now” to add it without an invoice."
)
PACK_NO_PRICE = N_(
    "The plan {plan} has no price in {currency} for the category {category}: the pack cannot"
    " be invoiced now. Add the price, or untick “Invoice this pack now”."
)
ALREADY_DONE = N_(
    "This action was already done, or its confirmation has expired: nothing more was"
    " changed. Check the organization's page before starting again."
)
#: The session's pending confirmations: {nonce: {"action", "tenant_id", "form", "expires"}}.
CONFIRM_SESSION = "admin_confirm"
#: How many confirmations a session keeps pending (the oldest are dropped), and for how long.
CONFIRM_MAX = 20
CONFIRM_SECONDS = 3600
#: How far back a payment's received date may go.
OLDEST_PAYMENT_DAYS = 3 * 366


def tenant_page(tenant: TenantSummary) -> str:
    return f"/admin/tenants/{tenant.id}"


def _now() -> datetime:
    return datetime.now(UTC)


def _reading(staff: StaffContext, tenant: TenantSummary) -> TenantContext:
    """A context to read what the form shows (no reason: it records nothing)."""
    return acting_in_tenant(staff, tenant)


def _acting(staff: StaffContext, form: dict[str, str], tenant: TenantSummary) -> TenantContext:
    """The context of the change: the staff member with the reason typed."""
    return acting_in_tenant(with_reason(staff, form.get("reason", "")), tenant)


def _int(text: str | None, field: str) -> int:
    value = (text or "").strip()
    if not value or not value.lstrip("-").isdigit() or len(value) > 9:
        raise Invalid(BAD_NUMBER, field=field)
    return int(value)


def _day(text: str | None, field: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise Invalid(BAD_DATE, field=field) from None


def _confirmed_fields(form: dict[str, str]) -> dict[str, str]:
    """What a confirmation page carries and its button applies (hidden fields)."""
    return {k: v for k, v in form.items() if k not in ("_csrf_token", "step", "nonce")}


def _digest(form: dict[str, str]) -> str:
    fields = sorted(_confirmed_fields(form).items())
    return hashlib.sha256(repr(fields).encode()).hexdigest()


def _pending(request: Request[Any, Any, Any]) -> dict[str, dict[str, Any]]:
    """The session's confirmations still pending, the expired ones dropped."""
    stored = session_of(request).get(CONFIRM_SESSION)
    now = time.time()
    if not isinstance(stored, dict):
        return {}
    return {
        nonce: entry
        for nonce, entry in stored.items()
        if isinstance(entry, dict) and float(entry.get("expires", 0)) > now
    }


def _issue_nonce(
    request: Request[Any, Any, Any], tenant: TenantSummary, action: str, form: dict[str, str]
) -> str:
    """A single-use token for the confirmation page of `action` with these values, kept in
    the staff member's session (at most `CONFIRM_MAX`, the oldest dropped)."""
    pending = _pending(request)
    nonce = secrets.token_urlsafe(24)
    pending[nonce] = {
        "action": action,
        "tenant_id": str(tenant.id),
        "form": _digest(form),
        "expires": time.time() + CONFIRM_SECONDS,
    }
    oldest_first = sorted(pending.items(), key=lambda item: float(item[1]["expires"]))
    session_of(request)[CONFIRM_SESSION] = dict(oldest_first[-CONFIRM_MAX:])
    return nonce


async def _consume_nonce(
    request: Request[Any, Any, Any], tenant: TenantSummary, action: str, form: dict[str, str]
) -> None:
    """Take the confirmation's token out of the session (Conflict when it was used already,
    expired, or confirmed another action or other values): each confirmation applies once.
    A double click sends the second request before the first one's response saved the
    session without the token: the token is also claimed in the shared counters (Redis when
    configured), where only the first claim counts."""
    nonce = form.get("nonce") or ""
    pending = _pending(request)
    entry = pending.pop(nonce, None)
    session_of(request)[CONFIRM_SESSION] = pending
    if (
        entry is None
        or entry.get("action") != action
        or entry.get("tenant_id") != str(tenant.id)
        or entry.get("form") != _digest(form)
    ):
        raise Conflict(ALREADY_DONE)
    claims = await request.app.state.limiter.hit(f"admin:confirm:{nonce}", CONFIRM_SECONDS)
    if claims > 1:
        raise Conflict(ALREADY_DONE)


async def _applying(
    request: Request[Any, Any, Any], tenant: TenantSummary, action: str, form: dict[str, str]
) -> bool:
    """Whether this POST is the confirmation's `step=apply`: then its single-use token is
    consumed first (a second submission of the same confirmation is refused, 409)."""
    if form.get("step") != "apply":
        return False
    await _consume_nonce(request, tenant, action, form)
    return True


@dataclass(frozen=True)
class Row:
    """One line of a confirmation page: what will be done."""

    label: str
    value: str
    #: whether `value` is a msgid to translate (else data shown as it is)
    translated: bool = False


def _confirm(
    request: Request[Any, Any, Any],
    tenant: TenantSummary,
    *,
    title: str,
    action: str,
    rows: list[Row],
    form: dict[str, str],
    danger: bool = False,
    **extra: Any,
) -> Template:
    """The confirmation page: what the form will do, the values typed carried as hidden
    fields, and the button that applies it (`step=apply`)."""
    hidden = _confirmed_fields(form)
    hidden["nonce"] = _issue_nonce(request, tenant, action, form)
    return render(
        request,
        "admin/actions/confirm.html",
        section="tenants",
        org=tenant,
        title=title,
        action=action,
        rows=rows,
        hidden=hidden,
        danger=danger,
        **extra,
    )


def _done(
    request: Request[Any, Any, Any], tenant: TenantSummary, message: str, **params: Any
) -> Redirect:
    flash(request, message, **params)
    return redirect(tenant_page(tenant))


def _url(tenant: TenantSummary, rest: str) -> str:
    return f"/admin/tenants/{tenant.id}/actions/{rest}"


# --- the plan and the seats ---------------------------------------------------------------


async def _plan_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    sub = await subscriptions.current_subscription(_reading(staff, tenant))
    offers = await active_offers()
    choices = [
        (offer.plan.code, f"{offer.plan.name('en')} ({offer.plan.code})")
        for offer in offers
        if offer.plan.kind != PlanKind.SEAT_PACK
        and (sub is None or offer.plan.interval == sub.plan.interval)
    ]
    if sub is not None and sub.plan.code not in [code for code, _ in choices]:
        choices.insert(0, (sub.plan.code, f"{sub.plan.name('en')} ({sub.plan.code})"))
    return {"org": tenant, "sub": sub, "plans": choices}


def _change_request(form: dict[str, str]) -> changes.ChangeRequest:
    plan = (form.get("plan") or "").strip() or None
    quantity_text = (form.get("quantity") or "").strip()
    quantity = _int(quantity_text, "quantity") if quantity_text else None
    if plan is None and quantity is None:
        raise Invalid(NO_CHANGE_ASKED, field="plan")
    return changes.ChangeRequest(plan_code=plan, quantity=quantity)


@get(f"{BASE}/plan", opt=BILLING, name="admin_action_plan")
async def plan_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    context = await _plan_context(staff, tenant)
    values = (
        {"plan": context["sub"].plan.code, "quantity": str(context["sub"].quantity)}
        if context["sub"]
        else {}
    )
    return render(request, "admin/actions/plan.html", section="tenants", values=values, **context)


@post(f"{BASE}/plan", opt=BILLING, status_code=303)
async def change_plan(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        change = _change_request(form)
        preview = await changes.preview_change(ctx, change, at=_now())  # refuses bad input
        if await _applying(request, tenant, _url(tenant, "plan"), form):
            after = await changes.apply_change(ctx, change, at=_now(), locale=locale_of(request))
            return _done(
                request,
                tenant,
                N_("The subscription is now {plan} × {quantity}."),
                plan=after.plan.name("en"),
                quantity=after.quantity,
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/plan.html",
            error,
            form,
            section="tenants",
            **await _plan_context(staff, tenant),
        )
    return _confirm(
        request,
        tenant,
        title=N_("Change the plan or the seats"),
        action=_url(tenant, "plan"),
        rows=[Row(N_("Reason"), clean_reason(form.get("reason")))],
        form=form,
        preview=preview,
    )


async def _trial_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    return {
        "org": tenant,
        "sub": await subscriptions.current_subscription(_reading(staff, tenant)),
        "max_days": subscriptions.MAX_TRIAL_EXTENSION_DAYS,
    }


@get(f"{BASE}/trial", opt=BILLING, name="admin_action_trial")
async def trial_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/trial.html",
        section="tenants",
        values={"days": "14"},
        **await _trial_context(staff, tenant),
    )


@post(f"{BASE}/trial", opt=BILLING, status_code=303)
async def extend_trial(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        days = _int(form.get("days"), "days")
        if not 1 <= days <= subscriptions.MAX_TRIAL_EXTENSION_DAYS:
            raise Invalid(
                subscriptions.BAD_TRIAL_DAYS,
                field="days",
                high=subscriptions.MAX_TRIAL_EXTENSION_DAYS,
            )
        sub = await subscriptions.current_subscription(_reading(staff, tenant))
        if sub is None:
            raise NotFound(subscriptions.NO_SUBSCRIPTION)
        if sub.status != subscriptions.S.TRIALING:
            raise Invalid(subscriptions.NOT_TRIALING, field="days")
        if await _applying(request, tenant, _url(tenant, "trial"), form):
            after = await subscriptions.extend_trial(ctx, days, at=_now())
            return _done(
                request,
                tenant,
                N_("The trial now ends on {day}."),
                day=f"{after.trial_end:%Y-%m-%d}",
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/trial.html",
            error,
            form,
            section="tenants",
            **await _trial_context(staff, tenant),
        )
    end = (sub.trial_end or sub.current_period_end) + timedelta(days=days)
    return _confirm(
        request,
        tenant,
        title=N_("Extend the trial"),
        action=_url(tenant, "trial"),
        rows=[
            Row(N_("Extended by (days)"), str(days)),
            Row(N_("New end of the trial"), f"{end:%Y-%m-%d}"),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


async def _packs_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    report = await seats.usage_report(_reading(staff, tenant))
    return {
        "org": tenant,
        "report": report,
        "categories": [(category, category) for category in seats.PACK_CATEGORIES],
        "today": _now().date(),
    }


def _pack_fields(form: dict[str, str]) -> seats.SeatPackFields:
    count = _int(form.get("seats"), "seats")
    starts_on = _day(form.get("starts_on"), "starts_on")
    ends_text = (form.get("ends_on") or "").strip()
    ends_on = _day(ends_text, "ends_on") if ends_text else None
    return seats.check_pack(
        seats.SeatPackFields(
            seats=count,
            starts_on=starts_on,
            ends_on=ends_on,
            category=(form.get("category") or "standard").strip(),
            reference=form.get("reference") or "",
        )
    )


async def _check_invoiceable(
    staff: StaffContext, tenant: TenantSummary, fields: seats.SeatPackFields
) -> None:
    """Refuse "invoice it now" when `invoices.bill_seat_pack` would issue nothing: no
    subscription, not a seat-pack plan, or no price for the pack's category."""
    sub = await subscriptions.current_subscription(_reading(staff, tenant))
    if sub is None:
        raise Invalid(PACK_NO_SUBSCRIPTION, field="invoice")
    if sub.plan.kind != PlanKind.SEAT_PACK or not sub.plan.pack_seats:
        raise Invalid(PACK_NOT_SEAT_PACK_PLAN, field="invoice", plan=sub.plan.code)
    if await plan_price(sub.plan.id, sub.currency, fields.category) is None:
        raise Invalid(
            PACK_NO_PRICE,
            field="invoice",
            plan=sub.plan.code,
            category=fields.category,
            currency=sub.currency,
        )


@get(f"{BASE}/seat-pack", opt=BILLING, name="admin_action_seat_pack")
async def seat_pack_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    values = {"starts_on": _now().date().isoformat(), "category": "standard", "invoice": "on"}
    return render(
        request,
        "admin/actions/seat_pack.html",
        section="tenants",
        values=values,
        **await _packs_context(staff, tenant),
    )


@post(f"{BASE}/seat-pack", opt=BILLING, status_code=303)
async def add_seat_pack(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        reasoned = with_reason(staff, form.get("reason", ""))
        fields = _pack_fields(form)
        if form.get("invoice"):
            await _check_invoiceable(staff, tenant, fields)
        if await _applying(request, tenant, _url(tenant, "seat-pack"), form):
            ctx = acting_in_tenant(reasoned, tenant)
            # two transactions: the pack, then its invoice (`bill_seat_pack` opens its own)
            pack = await seats.add_seat_pack(ctx, reasoned, fields)
            invoice = None
            if form.get("invoice"):
                invoice = await invoices.bill_seat_pack(ctx, pack, locale="fr")
                if invoice is None:  # the catalogue changed since the check above
                    return _done(
                        request,
                        tenant,
                        N_(
                            "A pack of {seats} seats was added, but no invoice could be issued"
                            " for it: invoice it by hand."
                        ),
                        seats=pack.seats,
                    )
            if invoice is not None:
                return _done(
                    request,
                    tenant,
                    N_("A pack of {seats} seats was added; invoice {number} was issued."),
                    seats=pack.seats,
                    number=invoice.number,
                )
            return _done(
                request, tenant, N_("A pack of {seats} seats was added."), seats=pack.seats
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/seat_pack.html",
            error,
            form,
            section="tenants",
            **await _packs_context(staff, tenant),
        )
    assert fields.ends_on is not None
    return _confirm(
        request,
        tenant,
        title=N_("Add a seat pack"),
        action=_url(tenant, "seat-pack"),
        rows=[
            Row(N_("Seats"), str(fields.seats)),
            Row(N_("Valid"), f"{fields.starts_on:%Y-%m-%d} – {fields.ends_on:%Y-%m-%d}"),
            Row(N_("Price category"), fields.category),
            Row(N_("Reference"), fields.reference or "—"),
            Row(N_("Invoice it now"), N_("yes") if form.get("invoice") else N_("no"), True),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


async def _pack_of(staff: StaffContext, tenant: TenantSummary, pack_id: UUID) -> seats.SeatPack:
    report = await seats.usage_report(_reading(staff, tenant))
    for pack in report.packs if report else []:
        if pack.id == pack_id:
            return pack
    raise NotFound()


@get(f"{BASE}/seat-pack/{{pack_id:uuid}}/remove", opt=BILLING, name="admin_action_pack_remove")
async def remove_pack_page(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    pack_id: FromPath[UUID],
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    pack = await _pack_of(staff, tenant, pack_id)
    return render(
        request, "admin/actions/seat_pack_remove.html", section="tenants", org=tenant, pack=pack
    )


@post(f"{BASE}/seat-pack/{{pack_id:uuid}}/remove", opt=BILLING, status_code=303)
async def remove_pack(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    pack_id: FromPath[UUID],
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    pack = await _pack_of(staff, tenant, pack_id)
    form = await form_of(request)
    try:
        reasoned = with_reason(staff, form.get("reason", ""))
        if await _applying(request, tenant, _url(tenant, f"seat-pack/{pack.id}/remove"), form):
            await seats.withdraw_seat_pack(
                acting_in_tenant(reasoned, tenant), reasoned, pack.id, at=_now()
            )
            return _done(
                request, tenant, N_("The pack of {seats} seats was removed."), seats=pack.seats
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/seat_pack_remove.html",
            error,
            form,
            section="tenants",
            org=tenant,
            pack=pack,
        )
    return _confirm(
        request,
        tenant,
        title=N_("Remove a seat pack"),
        action=_url(tenant, f"seat-pack/{pack.id}/remove"),
        rows=[
            Row(N_("Seats"), str(pack.seats)),
            Row(N_("Valid"), f"{pack.starts_on:%Y-%m-%d} – {pack.ends_on:%Y-%m-%d}"),
            Row(N_("Reference"), pack.reference or "—"),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
        danger=True,
    )


# --- discounts, credit notes, payments ------------------------------------------------------


async def _discount_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    return {"org": tenant, "sub": await subscriptions.current_subscription(_reading(staff, tenant))}


def _discount_amount(form: dict[str, str], sub: subscriptions.Subscription) -> int:
    amount_text = (form.get("amount") or "").strip()
    percent_text = (form.get("percent") or "").strip()
    if amount_text and percent_text:
        raise Invalid(CHOOSE_ONE, field="amount")
    if percent_text:
        percent = _int(percent_text, "percent")
        if not 1 <= percent <= 100:
            raise Invalid(BAD_PERCENT, field="percent")
        period = sub.period_amount
        if period is None:
            raise Invalid(changes.CREDIT_NEEDS_PRICE, field="percent")
        return (period.amount * percent + 50) // 100
    return payments.parse_amount(amount_text, sub.currency)


@get(f"{BASE}/discount", opt=BILLING, name="admin_action_discount")
async def discount_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/discount.html",
        section="tenants",
        **await _discount_context(staff, tenant),
    )


@post(f"{BASE}/discount", opt=BILLING, status_code=303)
async def grant_discount(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        sub = await subscriptions.current_subscription(_reading(staff, tenant))
        if sub is None:
            raise NotFound(subscriptions.NO_SUBSCRIPTION)
        amount = _discount_amount(form, sub)
        description = form.get("description", "")
        ceiling = sub.period_amount
        if ceiling is not None and amount > ceiling.amount:
            raise Invalid(changes.BAD_CREDIT, field="amount", high=str(ceiling))
        if await _applying(request, tenant, _url(tenant, "discount"), form):
            granted = await changes.grant_discount(ctx, amount, description, at=_now())
            return _done(
                request,
                tenant,
                N_("A discount of {amount} will be deducted from the next invoice."),
                amount=granted.format(locale_of(request)),
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/discount.html",
            error,
            form,
            section="tenants",
            **await _discount_context(staff, tenant),
        )
    return _confirm(
        request,
        tenant,
        title=N_("Grant a discount"),
        action=_url(tenant, "discount"),
        rows=[
            Row(
                N_("Discount on the next invoice"),
                Money(amount, sub.currency).format(locale_of(request)),
            ),
            Row(N_("Description on the invoice"), " ".join(description.split()) or "—"),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


async def _invoice_of(
    staff: StaffContext, tenant: TenantSummary, invoice_id: UUID
) -> invoices.Invoice:
    """The tenant's issued invoice `invoice_id` (another tenant's: 404, like a draft)."""
    invoice = await invoices.get_invoice(_reading(staff, tenant), invoice_id)
    if invoice.status == "draft" or invoice.is_credit_note:
        raise NotFound()
    return invoice


def _due(invoice: invoices.Invoice) -> Money:
    return invoice.money(max(invoice.total - invoice.amount_paid, 0))


@get(f"{BASE}/credit-note/{{invoice_id:uuid}}", opt=BILLING, name="admin_action_credit_note")
async def credit_note_page(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    invoice_id: FromPath[UUID],
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    invoice = await _invoice_of(staff, tenant, invoice_id)
    return render(
        request,
        "admin/actions/credit_note.html",
        section="tenants",
        org=tenant,
        invoice=invoice,
        due=_due(invoice),
        values={"amount": str(_due(invoice).decimal)},
    )


@post(f"{BASE}/credit-note/{{invoice_id:uuid}}", opt=BILLING, status_code=303)
async def credit_note(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    invoice_id: FromPath[UUID],
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    invoice = await _invoice_of(staff, tenant, invoice_id)
    form = await form_of(request)
    due = _due(invoice)
    try:
        ctx = _acting(staff, form, tenant)
        amount = payments.parse_amount(form.get("amount", ""), invoice.currency)
        if invoice.status not in ("open", "uncollectible") or amount > due.amount:
            raise Invalid(invoices.BAD_CREDIT_AMOUNT, field="amount", due=str(due))
        if await _applying(request, tenant, _url(tenant, f"credit-note/{invoice.id}"), form):
            note = await invoices.credit_invoice_amount(
                ctx, invoice.id, amount=amount, reason=ctx.actor.reason, at=_now()
            )
            return _done(
                request,
                tenant,
                N_("Credit note {number} was issued against invoice {invoice}."),
                number=note.number,
                invoice=invoice.number,
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/credit_note.html",
            error,
            form,
            section="tenants",
            org=tenant,
            invoice=invoice,
            due=due,
        )
    locale = locale_of(request)
    return _confirm(
        request,
        tenant,
        title=N_("Issue a credit note"),
        action=_url(tenant, f"credit-note/{invoice.id}"),
        rows=[
            Row(N_("Invoice"), invoice.number or ""),
            Row(N_("Credited, tax included"), invoice.money(amount).format(locale)),
            Row(
                N_("Effect"),
                N_("The invoice is voided.")
                if amount == due.amount and invoice.amount_paid == 0
                else N_("The amount due goes down by this amount."),
                True,
            ),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
        danger=True,
    )


def _received_on(form: dict[str, str]) -> date:
    day = _day(form.get("received_on"), "received_on")
    today = _now().date()
    if day > today:
        raise Invalid(FUTURE_DATE, field="received_on")
    if day < today - timedelta(days=OLDEST_PAYMENT_DAYS):
        raise Invalid(OLD_DATE, field="received_on")
    return day


@get(f"{BASE}/payment/{{invoice_id:uuid}}", opt=BILLING, name="admin_action_payment")
async def payment_page(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    invoice_id: FromPath[UUID],
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    invoice = await _invoice_of(staff, tenant, invoice_id)
    return render(
        request,
        "admin/actions/payment.html",
        section="tenants",
        org=tenant,
        invoice=invoice,
        due=_due(invoice),
        values={"received_on": _now().date().isoformat()},
    )


@post(f"{BASE}/payment/{{invoice_id:uuid}}", opt=BILLING, status_code=303)
async def record_payment(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    tenant_id: FromPath[UUID],
    invoice_id: FromPath[UUID],
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    invoice = await _invoice_of(staff, tenant, invoice_id)
    form = await form_of(request)
    due = _due(invoice)
    try:
        reasoned = with_reason(staff, form.get("reason", ""))
        amount = payments.parse_amount(form.get("amount", ""), invoice.currency)
        if invoice.status not in ("open", "uncollectible") or amount > due.amount:
            raise Invalid(
                N_("This payment is more than the {due} still due: it was not recorded."),
                field="amount",
                due=str(due),
            )
        received_on = _received_on(form)
        reference = (form.get("reference") or "").strip()
        if not reference:
            raise Invalid(N_("A bank transfer needs the bank's reference."), field="reference")
        if await _applying(request, tenant, _url(tenant, f"payment/{invoice.id}"), form):
            applied = await payments.record_payment(
                acting_in_tenant(reasoned, tenant),
                reasoned,
                str(invoice.id),
                amount=amount,
                method="bank_transfer",
                reference=reference,
                received_on=received_on,
                at=_now(),
            )
            if applied.payment is None:
                return _done(
                    request,
                    tenant,
                    N_("This transfer ({reference}) was recorded already: nothing changed."),
                    reference=reference,
                )
            return _done(
                request,
                tenant,
                N_("A transfer of {amount} was recorded against invoice {number}."),
                amount=invoice.money(amount).format(locale_of(request)),
                number=invoice.number,
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/payment.html",
            error,
            form,
            section="tenants",
            org=tenant,
            invoice=invoice,
            due=due,
        )
    locale = locale_of(request)
    return _confirm(
        request,
        tenant,
        title=N_("Record a bank transfer"),
        action=_url(tenant, f"payment/{invoice.id}"),
        rows=[
            Row(N_("Invoice"), invoice.number or ""),
            Row(N_("Amount received"), invoice.money(amount).format(locale)),
            Row(N_("Still due after it"), invoice.money(due.amount - amount).format(locale)),
            Row(N_("Received on"), received_on.isoformat()),
            Row(N_("Bank reference"), reference),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


# --- the organization's life --------------------------------------------------------------


async def _life_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    return {
        "org": tenant,
        "sub": await subscriptions.current_subscription(_reading(staff, tenant)),
        "retention": organizations.RETENTION_DAYS,
        "retention_min": organizations.RETENTION_MIN_DAYS,
        "retention_max": organizations.RETENTION_MAX_DAYS,
    }


@get(f"{BASE}/suspend", opt=TENANTS, name="admin_action_suspend")
async def suspend_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/suspend.html",
        section="tenants",
        **await _life_context(staff, tenant),
    )


@post(f"{BASE}/suspend", opt=TENANTS, status_code=303)
async def suspend(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        if tenant.status not in ("trial", "active"):
            raise Invalid(organizations.NOT_SUSPENDABLE)
        if await _applying(request, tenant, _url(tenant, "suspend"), form):
            await changes.suspend_tenant(ctx, at=_now())
            return _done(request, tenant, N_("{name} is suspended."), name=tenant.name)
    except UserError as error:
        return form_error(
            request,
            "admin/actions/suspend.html",
            error,
            form,
            section="tenants",
            **await _life_context(staff, tenant),
        )
    return _confirm(
        request,
        tenant,
        title=N_("Suspend the organization"),
        action=_url(tenant, "suspend"),
        rows=[
            Row(N_("Organization"), f"{tenant.name} ({tenant.slug})"),
            Row(
                N_("Effect"),
                N_(
                    "Its members, participants and API tokens are turned away; its subscription "
                    "is left as billing has it."
                ),
                True,
            ),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
        danger=True,
    )


@get(f"{BASE}/reactivate", opt=TENANTS, name="admin_action_reactivate")
async def reactivate_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/reactivate.html",
        section="tenants",
        **await _life_context(staff, tenant),
    )


@post(f"{BASE}/reactivate", opt=TENANTS, status_code=303)
async def reactivate(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        if tenant.status not in ("suspended", "closed"):
            raise Invalid(organizations.NOT_REOPENABLE)
        if await _applying(request, tenant, _url(tenant, "reactivate"), form):
            await changes.reactivate_tenant(ctx, at=_now())
            return _done(
                request,
                tenant,
                N_("{name} is reactivated."),
                name=tenant.name,
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/reactivate.html",
            error,
            form,
            section="tenants",
            **await _life_context(staff, tenant),
        )
    return _confirm(
        request,
        tenant,
        title=N_("Reactivate the organization"),
        action=_url(tenant, "reactivate"),
        rows=[
            Row(N_("Organization"), f"{tenant.name} ({tenant.slug})"),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


@get(f"{BASE}/close", opt=TENANTS, name="admin_action_close")
async def close_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/close.html",
        section="tenants",
        values={"retention_days": str(organizations.RETENTION_DAYS)},
        **await _life_context(staff, tenant),
    )


@post(f"{BASE}/close", opt=TENANTS, status_code=303)
async def close(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    try:
        ctx = _acting(staff, form, tenant)
        days = organizations.clean_retention(form.get("retention_days"))
        if (form.get("confirm_slug") or "").strip().lower() != tenant.slug:
            raise Invalid(organizations.WRONG_SLUG, field="confirm_slug")
        if tenant.status == "closed":
            raise Invalid(organizations.ALREADY_CLOSED)
        if await _applying(request, tenant, _url(tenant, "close"), form):
            delete_after = await changes.close_tenant(
                ctx, confirm_slug=form.get("confirm_slug", ""), retention_days=days, at=_now()
            )
            return _done(
                request,
                tenant,
                N_(
                    "{name} is closed. Its data is kept until {day}; it can be reopened until then."
                ),
                name=tenant.name,
                day=delete_after.isoformat(),
            )
    except UserError as error:
        return form_error(
            request,
            "admin/actions/close.html",
            error,
            form,
            section="tenants",
            **await _life_context(staff, tenant),
        )
    return _confirm(
        request,
        tenant,
        title=N_("Close the organization"),
        action=_url(tenant, "close"),
        rows=[
            Row(N_("Organization"), f"{tenant.name} ({tenant.slug})"),
            Row(N_("Kept until"), (_now().date() + timedelta(days=days)).isoformat()),
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
        danger=True,
    )


# --- features -----------------------------------------------------------------------------


async def _features_context(staff: StaffContext, tenant: TenantSummary) -> dict[str, Any]:
    current = await tenant_features.tenant_features(_reading(staff, tenant))
    return {
        "org": tenant,
        "features": [
            (feature.value, info, current[feature])
            for feature, info in tenant_features.FEATURES.items()
        ],
    }


def _wanted(form: dict[str, str]) -> dict[str, bool]:
    return {
        feature.value: bool(form.get(f"feature_{feature.value}"))
        for feature in tenant_features.Feature
    }


def _seen(form: dict[str, str]) -> dict[str, bool]:
    """The state of each feature the page showed (its hidden `was_<key>`: "on" or "off")."""
    return {
        feature.value: form[f"was_{feature.value}"] == "on"
        for feature in tenant_features.Feature
        if form.get(f"was_{feature.value}") in ("on", "off")
    }


@get(f"{BASE}/features", opt=TENANTS, name="admin_action_features")
async def features_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await organizations.tenant_by_id(tenant_id)
    return render(
        request,
        "admin/actions/features.html",
        section="tenants",
        **await _features_context(staff, tenant),
    )


@post(f"{BASE}/features", opt=TENANTS, status_code=303)
async def set_features(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    tenant = await organizations.tenant_by_id(tenant_id)
    form = await form_of(request)
    wanted = _wanted(form)
    try:
        ctx = _acting(staff, form, tenant)
        current = await tenant_features.tenant_features(_reading(staff, tenant))
        # only what the person changed on the page they saw (a page shown before another
        # staff member's change must not undo it); without the page's state, the stored one
        seen = {key: _seen(form).get(key, current[tenant_features.Feature(key)]) for key in wanted}
        changed = {key: on for key, on in wanted.items() if seen[key] != on}
        if not changed:
            raise Invalid(N_("Nothing to change: turn a feature on or off."), field="features")
        if any(current[tenant_features.Feature(key)] != seen[key] for key in changed):
            raise Conflict(tenant_features.CHANGED_MEANWHILE, field="features")
        if await _applying(request, tenant, _url(tenant, "features"), form):
            await tenant_features.set_features(
                ctx, changed, expected={key: seen[key] for key in changed}
            )
            return _done(
                request, tenant, N_("The features of {name} were changed."), name=tenant.name
            )
    except UserError as error:
        if isinstance(error, Conflict):  # shown again as stored now, to choose again
            form = {k: v for k, v in form.items() if not k.startswith(("feature_", "was_"))}
        return form_error(
            request,
            "admin/actions/features.html",
            error,
            form,
            section="tenants",
            **await _features_context(staff, tenant),
        )
    labels = {f.value: info.label for f, info in tenant_features.FEATURES.items()}
    return _confirm(
        request,
        tenant,
        title=N_("Change the features"),
        action=_url(tenant, "features"),
        rows=[
            *[Row(labels[key], N_("on") if on else N_("off"), True) for key, on in changed.items()],
            Row(N_("Reason"), clean_reason(form.get("reason"))),
        ],
        form=form,
    )


handlers: list[Any] = [
    plan_page,
    change_plan,
    trial_page,
    extend_trial,
    seat_pack_page,
    add_seat_pack,
    remove_pack_page,
    remove_pack,
    discount_page,
    grant_discount,
    credit_note_page,
    credit_note,
    payment_page,
    record_payment,
    suspend_page,
    suspend,
    reactivate_page,
    reactivate,
    close_page,
    close,
    features_page,
    set_features,
]
