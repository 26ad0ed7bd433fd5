"""The onboarding wizard, `/admin/tenants/new`: an account manager creates a tenant in six
steps (kind and country, organization, plan, billing details, first admin, confirm).

One page per step. What each step gives is checked (`billing.onboarding.check_step`) and kept
in the staff member's server-side session; nothing is created before the confirm step's
"Create" (`billing.onboarding.onboard`). A wrong field re-renders its step (422) with what
was typed; the "Back" links show the earlier steps with their kept values. Changing the kind
or the country sets the later steps' defaults again (language, time zone, currency, payment).
Needs the tenant-managing and the billing-managing permissions.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from billing import onboarding
from billing.onboarding import STEP_FIELDS, STEPS, OnboardingFields
from core.errors import Conflict, Invalid, UserError
from core.i18n import N_
from core.settings import get_settings
from core.validation import slugify
from tenants.organizations import KINDS
from tenants.permissions import StaffPermission
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, locale_of, redirect, render, session_of

MANAGE = {"permission": StaffPermission.TENANTS_MANAGE}
TEMPLATE = "admin/onboarding.html"
SESSION_KEY = "admin_onboarding"
PATH = "/admin/tenants/new"

#: The steps' titles (msgids), in order.
STEP_TITLES = {
    "kind": N_("Kind and country"),
    "organization": N_("Organization"),
    "plan": N_("Plan"),
    "billing": N_("Billing details"),
    "admin": N_("First administrator"),
    "confirm": N_("Confirm"),
}
#: What the kind and country set again when they change.
DERIVED = (
    "locale",
    "timezone",
    "currency",
    "plan",
    "collection_method",
    "net_terms_days",
    "buyer_kind",
    "billing_country",
)


def _state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = session_of(request).get(SESSION_KEY)
    if not isinstance(state, dict):
        return {"values": {}, "done": []}
    return {"values": dict(state.get("values", {})), "done": list(state.get("done", []))}


def _save(request: Request[Any, Any, Any], state: dict[str, Any]) -> None:
    session_of(request)[SESSION_KEY] = state


def _first_missing(done: list[str]) -> str:
    for step in STEPS:
        if step not in done:
            return step
    return STEPS[-1]


async def _defaults(values: dict[str, str]) -> dict[str, str]:
    """The later steps' values the kind and country suggest, for what is not set yet."""
    if not values.get("kind") or not values.get("country"):
        return {}
    settings = get_settings()
    offered = await onboarding.offered_currencies()
    defaults = onboarding.defaults_for(
        values["kind"],
        values["country"],
        offered,
        settings,
        card_ok=bool(settings.stripe_secret_key),
    )
    return {
        "locale": defaults.locale,
        "timezone": defaults.timezone,
        "currency": defaults.currency,
        "collection_method": defaults.collection_method,
        "net_terms_days": str(defaults.net_terms_days),
        "buyer_kind": defaults.buyer_kind,
        "billing_country": values["country"],
        "quantity": "1",
        "legal_name": values.get("name", ""),
    }


async def _context(
    request: Request[Any, Any, Any], step: str, values: dict[str, str]
) -> dict[str, Any]:
    """What the page of `step` shows besides the form's values."""
    locale = locale_of(request)
    settings = get_settings()
    context: dict[str, Any] = {
        "section": "tenants",
        "step": step,
        "steps": [(name, STEP_TITLES[name]) for name in STEPS],
        "step_index": STEPS.index(step),
        "previous": STEPS[STEPS.index(step) - 1] if STEPS.index(step) else None,
        "kinds": KINDS,
        "card_ok": bool(settings.stripe_secret_key),
        "wizard": values,
    }
    if values.get("kind") and values.get("country"):
        offered = await onboarding.offered_currencies()
        context["currencies"] = offered
        context["defaults"] = onboarding.defaults_for(
            values["kind"], values["country"], offered, settings, card_ok=context["card_ok"]
        )
    if step in ("plan", "confirm") and values.get("currency"):
        context["plans"] = await onboarding.plan_choices(values["currency"])
        context["plan_label"] = {
            choice.value: f"{choice.name(locale)} · {choice.price.format(locale)}"
            for choice in context["plans"]
        }
    if step == "confirm":
        try:
            context["treatment"] = onboarding.treatment_of(values, settings)
        except Invalid:
            context["treatment"] = None
    return context


async def _page(
    request: Request[Any, Any, Any], step: str, state: dict[str, Any], status: int = 200
) -> Template:
    values = {**await _defaults(state["values"]), **state["values"]}
    return render(
        request, TEMPLATE, status=status, values=values, **await _context(request, step, values)
    )


@get("/tenants/new", opt=MANAGE, name="admin_onboarding")
async def onboarding_page(
    request: Request[Any, Any, Any], staff: StaffCtx, step: FromQuery[str | None] = None
) -> Template | Redirect:
    """The wizard's step `step` (the first one not filled in, by default or when an earlier
    one is missing)."""
    staff.require(StaffPermission.BILLING_MANAGE)
    state = _state(request)
    missing = _first_missing(state["done"])
    wanted = step if step in STEPS else missing
    if STEPS.index(wanted) > STEPS.index(missing):
        return redirect(f"{PATH}?step={missing}")
    return await _page(request, wanted, state)


@post("/tenants/new", opt=MANAGE, name="admin_onboarding_post")
async def onboarding_post(request: Request[Any, Any, Any], staff: StaffCtx) -> Template | Redirect:
    """One step's form: checked and kept, then the next step; the last one creates the
    tenant. `action=restart` forgets everything typed."""
    staff.require(StaffPermission.BILLING_MANAGE)
    form = await form_of(request)
    state = _state(request)
    if form.get("action") == "restart":
        _save(request, {"values": {}, "done": []})
        return redirect(PATH)
    step = form.get("step", "")
    if step not in STEPS:
        return redirect(PATH)
    missing = _first_missing(state["done"])
    if STEPS.index(step) > STEPS.index(missing):
        return redirect(f"{PATH}?step={missing}")
    typed = {name: form.get(name, "") for name in STEP_FIELDS[step]}
    if step == "organization" and not typed["slug"].strip():
        typed["slug"] = slugify(typed["name"])  # suggested from the name
    settings = get_settings()
    shown = {**await _defaults(state["values"]), **state["values"], **typed}
    try:
        cleaned = await onboarding.check_step(step, {**shown, **typed}, settings)
    except UserError as error:
        return form_error(request, TEMPLATE, error, shown, **await _context(request, step, shown))
    if step == "confirm":
        return await _create(request, staff, state, cleaned["reason"], shown)
    values = dict(state["values"])
    done = [s for s in state["done"] if s != step] + [step]
    if step == "kind" and any(values.get(k) != cleaned[k] for k in ("kind", "country")):
        # A new kind or country: the later steps' defaults follow it, and the steps that
        # hold them are to be seen again (what was typed there is kept).
        for name in DERIVED:
            values.pop(name, None)
        done = [s for s in done if s in ("kind", "admin")]
    if step == "organization" and values.get("currency") != cleaned["currency"]:
        # another currency: the plan (and its price) is chosen again
        values.pop("plan", None)
        done = [s for s in done if s != "plan"]
    values.update(cleaned)
    _save(request, {"values": onboarding.wizard_values(values), "done": done})
    return redirect(f"{PATH}?step={STEPS[STEPS.index(step) + 1]}")


async def _create(
    request: Request[Any, Any, Any],
    staff: StaffCtx,
    state: dict[str, Any],
    reason: str,
    shown: dict[str, str],
) -> Template | Redirect:
    fields = OnboardingFields.from_values({**state["values"], "reason": reason})
    try:
        tenant = await onboarding.onboard(staff, fields, get_settings())
    except UserError as error:
        # A step's field went wrong meanwhile (the identifier taken, a plan retired): its step.
        step = next(
            (s for s in STEPS if error.field in STEP_FIELDS[s]),
            "confirm",
        )
        if isinstance(error, (Invalid, Conflict)) and step != "confirm":
            return form_error(
                request, TEMPLATE, error, shown, **await _context(request, step, shown)
            )
        raise
    _save(request, {"values": {}, "done": []})
    flash(
        request,
        "{name} was created; its first administrator was invited.",
        name=tenant.name,
    )
    return redirect(f"/admin/tenants/{tenant.id}")


handlers: list[Any] = [onboarding_page, onboarding_post]
