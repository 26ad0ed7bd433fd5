"""The plans catalogue in the back office: every plan, on offer or retired, with its prices
and subscribers; creating and editing a plan with its prices (typed in major units, as a
person writes them); retiring a plan (never deleting one in use) and restoring it.

The catalogue is `billing.catalogue`'s: each write there checks the staff permission and
records itself in the staff trail (`plan.created`, `plan.edited`, `plan.price_set`,
`plan.retired`, `plan.restored`).

Editing a plan changes what its subscribers pay from their next period: the edit needs a
reason (recorded with each entry of the trail), and when it changes a price of a plan that
has subscribers, a confirmation step listing the prices it changes (the confirmation names
those changes: a form changed again after it asks again). Restoring a plan needs a reason
too, as retiring does. A code in a path is checked against the catalogue's format first: any
other value is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from admin.paths import path_token
from billing import catalogue
from billing.catalogue import CATEGORIES, INTERVALS, OveragePolicy, PlanFields, PlanKind
from billing.money import Money, currency_code, minor_digits
from core.errors import Conflict, Invalid, NotFound, UserError
from core.i18n import LOCALES
from tenants.permissions import StaffPermission
from tenants.staff import with_reason
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, locale_of, redirect, render

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}
BILLING_MANAGE = {"permission": StaffPermission.BILLING_MANAGE}

#: Empty price rows the form offers beyond the plan's current prices.
BLANK_PRICE_ROWS = 1
#: The most price rows a form may send.
MAX_PRICE_ROWS = 40

NOT_A_NUMBER = "Write a whole number."
#: Codes the plan pages' own paths use (`/admin/plans/new`).
RESERVED_CODES = frozenset({"new"})
RESERVED_CODE = "This code is reserved: choose another."
NO_AMOUNT = "Give the price in this currency, or leave the currency empty."
FIELD_MESSAGES = {
    "trial_days": catalogue.BAD_TRIAL,
    "included_seats": catalogue.LICENSE_SEATS,
    "pack_seats": catalogue.PACK_SEATS,
    "pack_validity_months": catalogue.PACK_SEATS,
}


def _optional_int(form: dict[str, str], name: str) -> int | None:
    text = form.get(name, "").strip().replace(" ", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise Invalid(FIELD_MESSAGES.get(name, NOT_A_NUMBER), field=name) from None


def _fields(form: dict[str, str], plan: catalogue.Plan | None) -> PlanFields:
    """The plan's fields as typed; an edited plan keeps its kind, interval and seats (what its
    subscribers bought), whatever the form says."""
    names = {locale: form.get(f"name_{locale}", "") for locale in LOCALES}
    descriptions = {locale: form.get(f"description_{locale}", "") for locale in LOCALES}
    trial = _optional_int(form, "trial_days") or 0
    policy = form.get("overage_policy", "")
    if plan is not None:
        return PlanFields(
            code=plan.code,
            kind=plan.kind,
            names=names,
            interval=plan.interval,
            overage_policy=policy,
            descriptions=descriptions,
            trial_days=trial,
            included_seats=plan.included_seats,
            pack_seats=plan.pack_seats,
            pack_validity_months=plan.pack_validity_months,
        )
    kind = form.get("kind", "")
    code = form.get("code", "").strip()
    if code in RESERVED_CODES:
        raise Invalid(RESERVED_CODE, field="code")
    # a seat count the form shows only for the kind that has it
    return PlanFields(
        code=code,
        kind=kind,
        names=names,
        interval=form.get("interval", ""),
        overage_policy=policy,
        descriptions=descriptions,
        trial_days=trial,
        included_seats=_optional_int(form, "included_seats") if kind == "license" else None,
        pack_seats=_optional_int(form, "pack_seats") if kind == "seat_pack" else None,
        pack_validity_months=(
            _optional_int(form, "pack_validity_months") if kind == "seat_pack" else None
        ),
    )


def _price_rows(form: dict[str, str]) -> int:
    rows = 0
    while rows < MAX_PRICE_ROWS and f"price_currency_{rows}" in form:
        rows += 1
    return rows


def _prices(form: dict[str, str]) -> list[catalogue.PriceInput]:
    """The prices typed, row by row; a row left empty is skipped. `Invalid` names the row's
    field (`price_amount_2`)."""
    prices = []
    for row in range(_price_rows(form)):
        currency_text = form.get(f"price_currency_{row}", "").strip()
        amount_text = form.get(f"price_amount_{row}", "").strip()
        overage_text = form.get(f"price_overage_{row}", "").strip()
        if not currency_text and not amount_text and not overage_text:
            continue
        currency = currency_code(currency_text, field=f"price_currency_{row}")
        if not amount_text:
            raise Invalid(NO_AMOUNT, field=f"price_amount_{row}")
        category = form.get(f"price_category_{row}", "standard")
        if category not in CATEGORIES:
            raise Invalid(catalogue.BAD_CATEGORY, field=f"price_category_{row}")
        prices.append(
            catalogue.PriceInput(
                currency=currency,
                unit_amount=catalogue.parse_price(
                    amount_text, currency, field=f"price_amount_{row}"
                ),
                category=category,
                overage_unit_amount=(
                    catalogue.parse_price(overage_text, currency, field=f"price_overage_{row}")
                    if overage_text
                    else None
                ),
            )
        )
    return prices


def _major(amount: int, currency: str) -> str:
    """Minor units as the form shows them back: "1200.50" for 120050 cents of EUR."""
    return f"{Money(amount, currency).decimal:.{minor_digits(currency)}f}"


def _values_of(offer: catalogue.PlanOffer) -> dict[str, Any]:
    """The edit form's values for a plan as the catalogue has it."""
    plan = offer.plan
    values: dict[str, Any] = {
        "code": plan.code,
        "kind": str(plan.kind),
        "interval": plan.interval,
        "trial_days": str(plan.trial_days),
        "overage_policy": str(plan.overage_policy),
        "included_seats": "" if plan.included_seats is None else str(plan.included_seats),
        "pack_seats": "" if plan.pack_seats is None else str(plan.pack_seats),
        "pack_validity_months": (
            "" if plan.pack_validity_months is None else str(plan.pack_validity_months)
        ),
    }
    for locale in LOCALES:
        values[f"name_{locale}"] = plan.names.get(locale, "")
        values[f"description_{locale}"] = plan.descriptions.get(locale, "")
    for row, price in enumerate(offer.prices):
        values[f"price_currency_{row}"] = price.currency
        values[f"price_category_{row}"] = price.category
        values[f"price_amount_{row}"] = _major(price.unit_amount, price.currency)
        values[f"price_overage_{row}"] = (
            ""
            if price.overage_unit_amount is None
            else _major(price.overage_unit_amount, price.currency)
        )
    return values


async def _offer(code: str) -> catalogue.PlanOffer:
    """The offer of plan `code`; `NotFound` for a code the catalogue could not hold."""
    path_token(code, catalogue.CODE)
    for offer in await catalogue.all_offers():
        if offer.plan.code == code:
            return offer
    raise NotFound(catalogue.UNKNOWN_PLAN)


def _form_context(
    values: dict[str, Any], plan: catalogue.Plan | None, blank: int = 0
) -> dict[str, Any]:
    """The form's choices, and its price rows: those in `values` (as typed, or the plan's
    prices) and `blank` empty ones more."""
    rows = _price_rows(values) if values else 0
    return {
        "plan": plan,
        "plan_locales": LOCALES,
        "kinds": [str(kind) for kind in PlanKind],
        "intervals": INTERVALS,
        "policies": [str(policy) for policy in OveragePolicy],
        "categories": CATEGORIES,
        "price_rows": range(max(rows + blank, 1)),
    }


@get("/plans", opt=TENANTS_READ, name="admin_plans")
async def plans_page(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    locale = locale_of(request)
    offers = await catalogue.all_offers()
    subscribers = await catalogue.dangerously_subscriber_counts(staff)
    rows = [
        {
            "offer": offer,
            "name": offer.plan.name(locale),
            "prices": [
                (
                    price,
                    price.unit.format(locale),
                    Money(price.overage_unit_amount, price.currency).format(locale)
                    if price.overage_unit_amount is not None
                    else None,
                )
                for price in offer.prices
            ],
            "subscribers": subscribers.get(offer.plan.id, 0),
        }
        for offer in offers
    ]
    return render(
        request,
        "admin/plans.html",
        section="plans",
        rows=rows,
        can_manage=staff.can(StaffPermission.BILLING_MANAGE),
    )


@get("/plans/new", opt=BILLING_MANAGE, name="admin_plan_new")
async def new_plan_page(request: Request[Any, Any, Any]) -> Template:
    values = {"kind": "per_seat", "interval": "month", "overage_policy": "warn", "trial_days": "0"}
    values |= {"price_currency_0": "EUR", "price_category_0": "standard"}
    return render(
        request,
        "admin/plan_form.html",
        section="plans",
        values=values,
        errors={},
        **_form_context(values, None, BLANK_PRICE_ROWS),
    )


@post("/plans/new", opt=BILLING_MANAGE, status_code=303)
async def create_plan(request: Request[Any, Any, Any], staff: StaffCtx) -> Template | Redirect:
    form = await form_of(request)
    try:
        plan = await catalogue.save_plan(staff, _fields(form, None), _prices(form))
    except (Invalid, Conflict) as error:
        return form_error(
            request,
            "admin/plan_form.html",
            error,
            form,
            section="plans",
            **_form_context(form, None),
        )
    flash(request, "The plan {code} is created.", code=plan.code)
    return redirect(f"/admin/plans/{plan.code}")


@get("/plans/{code:str}", opt=BILLING_MANAGE, name="admin_plan")
async def plan_page(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template:
    offer = await _offer(code)
    values = _values_of(offer)
    subscribers = await catalogue.dangerously_subscriber_counts(staff)
    return render(
        request,
        "admin/plan_form.html",
        section="plans",
        values=values,
        errors={},
        subscribers=subscribers.get(offer.plan.id, 0),
        **_form_context(values, offer.plan, BLANK_PRICE_ROWS),
    )


@dataclass(frozen=True)
class PriceChange:
    """A price the edit adds or changes, as the confirmation step shows it."""

    currency: str
    category: str
    before: str | None
    after: str


def _price_changes(
    offer: catalogue.PlanOffer, prices: list[catalogue.PriceInput], locale: str
) -> list[PriceChange]:
    """The prices among the checked `prices` that differ from the plan's: added or changed."""

    def shown(amount: int, overage: int | None, currency: str) -> str:
        text = Money(amount, currency).format(locale)
        if overage is not None:
            text += f" (+{Money(overage, currency).format(locale)})"
        return text

    current = {(price.currency, price.category): price for price in offer.prices}
    changes = []
    for price in prices:
        old = current.get((price.currency, price.category))
        if old is not None and (old.unit_amount, old.overage_unit_amount) == (
            price.unit_amount,
            price.overage_unit_amount,
        ):
            continue
        changes.append(
            PriceChange(
                price.currency,
                price.category,
                None
                if old is None
                else shown(old.unit_amount, old.overage_unit_amount, old.currency),
                shown(price.unit_amount, price.overage_unit_amount, price.currency),
            )
        )
    return changes


def _changes_token(changes: list[PriceChange]) -> str:
    """What a confirmation confirms: the changes it listed."""
    return ";".join(f"{c.currency}:{c.category}:{c.after}" for c in changes)


@post("/plans/{code:str}", opt=BILLING_MANAGE, status_code=303)
async def edit_plan(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template | Redirect:
    offer = await _offer(code)
    form = await form_of(request)
    subscribers = (await catalogue.dangerously_subscriber_counts(staff)).get(offer.plan.id, 0)
    context = {"section": "plans", "subscribers": subscribers, **_form_context(form, offer.plan)}
    values = {**form, "code": offer.plan.code, "kind": str(offer.plan.kind)}
    try:
        fields = _fields(form, offer.plan)
        prices = _prices(form)
        # checked before anything is asked or written: a confirmation never ends in an error
        catalogue.check_plan(fields)
        checked = [catalogue.check_price(price) for price in prices]
        acting = with_reason(staff, form.get("reason", ""))
        changes = _price_changes(offer, checked, locale_of(request))
        if changes and subscribers and form.get("confirm_prices") != _changes_token(changes):
            return render(
                request,
                "admin/plan_form.html",
                values=values,
                errors={},
                price_changes=changes,
                confirm_prices=_changes_token(changes),
                **context,
            )
        await catalogue.save_plan(acting, fields, prices, code=offer.plan.code)
    except (Invalid, Conflict) as error:
        return form_error(request, "admin/plan_form.html", error, values, **context)
    flash(request, "The plan {code} is saved.", code=code)
    return redirect(f"/admin/plans/{code}")


@get("/plans/{code:str}/retire", opt=BILLING_MANAGE, name="admin_plan_retire")
async def retire_page(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template:
    offer = await _offer(code)
    subscribers = await catalogue.dangerously_subscriber_counts(staff)
    return render(
        request,
        "admin/plan_retire.html",
        section="plans",
        plan=offer.plan,
        name=offer.plan.name(locale_of(request)),
        subscribers=subscribers.get(offer.plan.id, 0),
        values={},
        errors={},
    )


@post("/plans/{code:str}/retire", opt=BILLING_MANAGE, status_code=303)
async def retire_plan(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template | Redirect:
    offer = await _offer(code)
    form = await form_of(request)
    try:
        await catalogue.retire_plan(
            with_reason(staff, form.get("reason", "")), code, at=datetime.now(UTC)
        )
    except UserError as error:
        subscribers = await catalogue.dangerously_subscriber_counts(staff)
        return form_error(
            request,
            "admin/plan_retire.html",
            error,
            form,
            section="plans",
            plan=offer.plan,
            name=offer.plan.name(locale_of(request)),
            subscribers=subscribers.get(offer.plan.id, 0),
        )
    flash(request, "The plan {code} is retired: it is no longer offered.", code=code)
    return redirect("/admin/plans")


def _restore_page(
    request: Request[Any, Any, Any],
    offer: catalogue.PlanOffer,
    subscribers: int,
    form: dict[str, str],
    error: UserError | None = None,
) -> Template:
    context: dict[str, Any] = {
        "section": "plans",
        "plan": offer.plan,
        "name": offer.plan.name(locale_of(request)),
        "subscribers": subscribers,
    }
    if error is not None:
        return form_error(request, "admin/plan_restore.html", error, form, **context)
    return render(request, "admin/plan_restore.html", values=form, errors={}, **context)


@get("/plans/{code:str}/restore", opt=BILLING_MANAGE, name="admin_plan_restore")
async def restore_page(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template:
    offer = await _offer(code)
    subscribers = await catalogue.dangerously_subscriber_counts(staff)
    return _restore_page(request, offer, subscribers.get(offer.plan.id, 0), {})


@post("/plans/{code:str}/restore", opt=BILLING_MANAGE, status_code=303)
async def restore_plan(
    request: Request[Any, Any, Any], code: FromPath[str], staff: StaffCtx
) -> Template | Redirect:
    offer = await _offer(code)
    form = await form_of(request)
    try:
        await catalogue.restore_plan(with_reason(staff, form.get("reason", "")), offer.plan.code)
    except UserError as error:
        subscribers = await catalogue.dangerously_subscriber_counts(staff)
        return _restore_page(request, offer, subscribers.get(offer.plan.id, 0), form, error)
    flash(request, "The plan {code} is offered again.", code=code)
    return redirect("/admin/plans")


handlers: list[Any] = [
    plans_page,
    new_plan_page,
    create_plan,
    plan_page,
    edit_plan,
    retire_page,
    retire_plan,
    restore_page,
    restore_plan,
]
