"""The catalogue: plans and prices are checked, a plan in use is retired and never deleted,
and the offers list only plans still on offer, with their prices per currency."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from billing.catalogue import (
    PlanFields,
    PlanKind,
    active_offers,
    create_plan,
    dangerously_delete_plan,
    edit_plan,
    plan_by_code,
    retire_plan,
    set_price,
)
from billing.subscriptions import subscribe
from core.errors import Conflict, Forbidden, Invalid, NotFound
from tenants.context import Actor, StaffContext
from tests.billing.plans import STAFF, per_seat_plan
from tests.conftest import TenantFixture

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def _pack(code: str = "") -> PlanFields:
    return PlanFields(
        code=code or f"pack-{uuid4().hex[:10]}",
        kind=PlanKind.SEAT_PACK,
        names={"en": "Pack of 100", "fr": "Pack de 100"},
        interval="year",
        overage_policy="block",
        pack_seats=100,
        pack_validity_months=12,
    )


async def test_a_seat_pack_has_a_price_per_category(db: str) -> None:
    plan = await create_plan(STAFF, _pack())
    assert plan.kind == PlanKind.SEAT_PACK
    assert plan.name("fr") == "Pack de 100"
    assert plan.name("de") == "Pack of 100"
    for category, amount in (("public", 90_000), ("reduced", 60_000), ("full", 120_000)):
        await set_price(STAFF, plan.code, "eur", amount, category=category)
    await set_price(STAFF, plan.code, "EUR", 95_000, category="public")
    offers = {offer.plan.code: offer for offer in await active_offers()}
    prices = {(p.currency, p.category): p.unit_amount for p in offers[plan.code].prices}
    assert prices == {("EUR", "public"): 95_000, ("EUR", "reduced"): 60_000,
                      ("EUR", "full"): 120_000}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "Has Spaces"}, "code"),
        ({"kind": "lifetime"}, "kind"),
        ({"interval": "week"}, "interval"),
        ({"overage_policy": "ignore"}, "overage_policy"),
        ({"names": {"fr": "Sans anglais"}}, "names"),
        ({"trial_days": 400}, "trial_days"),
        ({"pack_seats": None}, "pack_seats"),
        ({"pack_validity_months": 0}, "pack_seats"),
    ],
)
async def test_wrong_plans_are_refused(db: str, change: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        await create_plan(STAFF, replace(_pack(), **change))  # type: ignore[arg-type]
    assert refused.value.field == field


async def test_a_licence_states_its_seats_and_a_per_seat_plan_none(db: str) -> None:
    licence = replace(_pack(), kind=PlanKind.LICENSE, pack_seats=None, included_seats=None)
    with pytest.raises(Invalid):
        await create_plan(STAFF, licence)
    with pytest.raises(Invalid):
        await create_plan(STAFF, replace(_pack(), kind=PlanKind.PER_SEAT))


@pytest.mark.parametrize(
    ("currency", "amount", "category"),
    [("EUX", 100, "standard"), ("EUR", -1, "standard"), ("EUR", 100, "vip")],
)
async def test_wrong_prices_are_refused(db: str, currency: str, amount: int, category: str) -> None:
    plan = await create_plan(STAFF, _pack())
    with pytest.raises(Invalid):
        await set_price(STAFF, plan.code, currency, amount, category=category)


async def test_codes_are_unique(db: str) -> None:
    plan = await create_plan(STAFF, _pack())
    with pytest.raises(Conflict):
        await create_plan(STAFF, _pack(plan.code))


async def test_editing_changes_names_not_what_subscribers_bought(db: str) -> None:
    plan = await create_plan(STAFF, _pack())
    edited = await edit_plan(
        STAFF, plan.code, replace(_pack(plan.code), names={"en": "Big pack"}, pack_seats=5)
    )
    assert edited.name("en") == "Big pack"
    assert edited.pack_seats == 100
    with pytest.raises(NotFound):
        await edit_plan(STAFF, "no-such-plan", _pack("no-such-plan"))


async def test_a_retired_plan_leaves_the_offers_and_cannot_be_chosen(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan()
    retired = await retire_plan(STAFF, plan.code, at=T0)
    assert retired.retired_at == T0
    assert (await retire_plan(STAFF, plan.code, at=datetime.now(UTC))).retired_at == T0
    assert plan.code not in {offer.plan.code for offer in await active_offers()}
    assert (await plan_by_code(plan.code)).retired_at == T0
    with pytest.raises(Invalid):
        await subscribe(tenant_a.owner_ctx, plan.code, at=T0)


async def test_a_plan_in_use_is_never_deleted(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan()
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0)
    with pytest.raises(Conflict):
        await dangerously_delete_plan(STAFF, plan.code)
    assert (await plan_by_code(plan.code)).code == plan.code
    unused = await per_seat_plan()
    await dangerously_delete_plan(STAFF, unused.code)
    with pytest.raises(NotFound):
        await plan_by_code(unused.code)


async def test_only_staff_who_manage_billing_edit_the_catalogue(db: str) -> None:
    support = StaffContext(actor=Actor(kind="staff", label="support"), role="support")
    with pytest.raises(Forbidden):
        await create_plan(support, _pack())
