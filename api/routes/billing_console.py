"""Billing in the tenant console, `/o/{slug}/billing…`, and the public pricing page.

The overview shows the plan, the state (with what to pay when late), the seats and the
price; admins and owners (`org:billing:manage`) change seats or plan with a preview first,
cancel at the end of the period (or undo it), fill in the billing details, and, during a
trial or without a subscription, pick a plan and pay by card (the gateway's checkout) or
ask to be invoiced (bank transfer). Reading needs `org:billing:read` (admins and owners too):
members get the 403 of the guards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from billing import catalogue, changes, invoices, profiles, seats, selfserve, subscriptions
from billing.changes import ChangeRequest
from billing.invoices import Invoice
from billing.money import Money
from billing.profiles import ProfileFields
from billing.subscriptions import Subscription, SubscriptionStatus
from core.errors import Invalid, UserError
from core.i18n import N_
from core.settings import get_settings
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, form_of, locale_of, redirect, render

READ = {"permission": Permission.BILLING_READ}
MANAGE = {"permission": Permission.BILLING_MANAGE}

BAD_NUMBER = N_("Enter a whole number of seats.")

#: What each state means for the tenant, shown under the status.
STATUS_TEXT = {
    SubscriptionStatus.TRIALING: N_("Free trial until {date}."),
    SubscriptionStatus.ACTIVE: N_("Active: the next period starts on {date}."),
    SubscriptionStatus.PAST_DUE: N_(
        "Payment is late since {date}: pay the open invoices below to keep your campaigns "
        "open to participants."
    ),
    SubscriptionStatus.SUSPENDED: N_(
        "Suspended since {date} for want of payment: participants cannot start a test until "
        "the open invoices below are paid."
    ),
    SubscriptionStatus.CANCELED: N_("Canceled on {date}: your organization is no longer billed."),
}


def _seats(value: str | None) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Invalid(BAD_NUMBER, field="quantity") from None


def _status_date(sub: Subscription) -> datetime | None:
    match sub.status:
        case SubscriptionStatus.TRIALING:
            return sub.trial_end
        case SubscriptionStatus.ACTIVE:
            return sub.current_period_end
        case SubscriptionStatus.PAST_DUE | SubscriptionStatus.SUSPENDED:
            return sub.past_due_since or sub.status_changed_at
        case _:
            return sub.status_changed_at


async def _open_invoices(ctx: TenantContext) -> list[Invoice]:
    """The invoices still to pay."""
    return [invoice for invoice in await invoices.list_invoices(ctx) if invoice.amount_due > 0]


def _amounts_due(due: list[Invoice]) -> list[Money]:
    """What the open invoices leave to pay, one sum per currency (never added across)."""
    sums: dict[str, int] = {}
    for invoice in due:
        sums[invoice.currency] = sums.get(invoice.currency, 0) + invoice.amount_due
    return [Money(amount, currency) for currency, amount in sorted(sums.items())]


def _card_payments() -> bool:
    return bool(get_settings().stripe_secret_key)


async def _overview(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    sub = await subscriptions.current_subscription(ctx)
    offers = await catalogue.active_offers()
    due = await _open_invoices(ctx) if sub is not None else []
    context: dict[str, Any] = {
        "sub": sub,
        "offers": offers,
        "status_text": STATUS_TEXT.get(sub.status) if sub else None,
        "status_date": _status_date(sub) if sub else None,
        "summary": await seats.usage_summary(ctx) if sub is not None else None,
        "open_invoices": due,
        "amounts_due": [money.format(locale_of(request)) for money in _amounts_due(due)],
        "profile": await profiles.billing_profile(ctx),
        "card_payments": _card_payments(),
        "can_manage": ctx.can(Permission.BILLING_MANAGE),
        "self_serve": sub is None or sub.status == SubscriptionStatus.TRIALING,
        "changeable": sub is not None
        and sub.status in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE),
        "locale": locale_of(request),
    }
    if error is None:
        form = {"quantity": str(sub.quantity) if sub else "1", "plan": sub.plan.code if sub else ""}
        return render(request, "console/billing.html", ctx=ctx, values=form, **context)
    return form_error(request, "console/billing.html", error, values or {}, ctx=ctx, **context)


@get("/billing", opt=READ)
async def billing_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _overview(request, ctx)


def _change_request(form: dict[str, str]) -> ChangeRequest:
    return ChangeRequest(
        plan_code=(form.get("plan") or "").strip() or None,
        quantity=_seats(form.get("quantity")),
    )


@post("/billing/preview", opt=MANAGE)
async def billing_preview(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    """What a change of seats or plan would cost, with a button to confirm it."""
    form = await form_of(request)
    try:
        preview = await changes.preview_change(ctx, _change_request(form), at=datetime.now(UTC))
    except UserError as error:
        return await _overview(request, ctx, error, form)
    return render(
        request,
        "console/billing_change.html",
        ctx=ctx,
        preview=preview,
        plan_code=preview.plan.code,
        quantity=preview.quantity,
        locale=locale_of(request),
    )


@post("/billing/change", opt=MANAGE)
async def billing_change(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    """Make the change previewed (worked out again: the price is the one of this moment)."""
    form = await form_of(request)
    try:
        await changes.apply_change(
            ctx, _change_request(form), at=datetime.now(UTC), locale=ctx.tenant.default_locale
        )
    except UserError as error:
        return await _overview(request, ctx, error, form)
    flash(request, "Your subscription is changed.")
    return redirect(f"/o/{ctx.tenant.slug}/billing")


@post("/billing/cancel", opt=MANAGE)
async def billing_cancel(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    """Cancel at the end of the current period (`resume=1` undoes it)."""
    form = await form_of(request)
    resume = form.get("resume") == "1"
    try:
        await changes.apply_change(
            ctx, ChangeRequest(cancel_at_period_end=not resume), at=datetime.now(UTC)
        )
    except UserError as error:
        return await _overview(request, ctx, error, form)
    if resume:
        flash(request, "Your subscription continues: it renews at the end of the period.")
    else:
        flash(request, "Your subscription ends at the end of the current period.")
    return redirect(f"/o/{ctx.tenant.slug}/billing")


@post("/billing/subscribe", opt=MANAGE)
async def billing_subscribe(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    """Self-serve: choose a plan (and seats) and pay by card or ask for an invoice."""
    form = await form_of(request)
    settings = get_settings()
    try:
        checkout = await selfserve.choose_plan(
            ctx,
            _change_request(form),
            pay_by=form.get("method", ""),
            currency=form.get("currency") or None,
            at=datetime.now(UTC),
            settings=settings,
            return_url=f"{settings.base_url}/o/{ctx.tenant.slug}/billing",
            locale=locale_of(request),
        )
    except UserError as error:
        return await _overview(request, ctx, error, form)
    if checkout is not None:
        return Redirect(path=checkout, status_code=303)
    flash(request, "Your subscription is active. The invoice is on its way by email.")
    return redirect(f"/o/{ctx.tenant.slug}/billing")


@post("/billing/portal", opt=MANAGE)
async def billing_portal(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    """The gateway's own page for cards and receipts, when it has one."""
    settings = get_settings()
    try:
        url = await selfserve.portal_url(
            ctx, settings=settings, return_url=f"{settings.base_url}/o/{ctx.tenant.slug}/billing"
        )
    except UserError as error:
        return await _overview(request, ctx, error, {})
    return Redirect(path=url, status_code=303)


PROFILE_FIELDS = (
    "legal_name",
    "country",
    "billing_email",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "vat_number",
    "buyer_kind",
    "siret",
    "chorus_service_code",
)


async def _profile_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    sub = await subscriptions.current_subscription(ctx)
    context: dict[str, Any] = {
        "sub": sub,
        "can_manage": ctx.can(Permission.BILLING_MANAGE),
        "buyer_kinds": [(kind.value, kind.value) for kind in profiles.BuyerKind],
    }
    if error is None:
        profile = await profiles.billing_profile(ctx)
        form: dict[str, Any] = (
            {name: getattr(profile, name) for name in PROFILE_FIELDS}
            if profile
            else {"country": "FR", "buyer_kind": "business"}
        )
        form["po_number"] = sub.po_number if sub else ""
        return render(request, "console/billing_profile.html", ctx=ctx, values=form, **context)
    return form_error(
        request, "console/billing_profile.html", error, values or {}, ctx=ctx, **context
    )


@get("/billing/profile", opt=READ)
async def billing_profile_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _profile_page(request, ctx)


@post("/billing/profile", opt=MANAGE)
async def billing_profile_save(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    fields = ProfileFields(**{name: form.get(name, "") for name in PROFILE_FIELDS})
    try:
        await profiles.save_profile(ctx, fields, po_number=form.get("po_number", ""))
    except UserError as error:
        return await _profile_page(request, ctx, error, form)
    flash(request, "Your billing details are saved.")
    return redirect(f"/o/{ctx.tenant.slug}/billing")


@get("/pricing")
async def pricing(request: Request[Any, Any, Any]) -> Template:
    """The plans on offer and their prices, in the visitor's language."""
    return render(
        request,
        "pricing.html",
        offers=await catalogue.active_offers(),
        locale=locale_of(request),
    )


handlers = [
    billing_page,
    billing_preview,
    billing_change,
    billing_cancel,
    billing_subscribe,
    billing_portal,
    billing_profile_page,
    billing_profile_save,
]
public_handlers = [pricing]
