"""Catalogue helpers for billing tests: plans are global, so each gets a code of its own."""

from __future__ import annotations

from uuid import uuid4

from billing.catalogue import Plan, PlanFields, PlanKind, create_plan, set_price, system_staff

STAFF = system_staff("tests")


async def per_seat_plan(
    amount: int = 500, *, trial_days: int = 14, interval: str = "month", currency: str = "EUR"
) -> Plan:
    """A per-seat plan at `amount` cents per seat per `interval`, with a trial."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"seat-{uuid4().hex[:10]}",
            kind=PlanKind.PER_SEAT,
            names={"en": "Per seat", "fr": "Par siège"},
            interval=interval,
            overage_policy="bill",
            trial_days=trial_days,
        ),
    )
    await set_price(STAFF, plan.code, currency, amount)
    return plan


async def licence_plan(amount: int = 1_200_000, seats: int = 500) -> Plan:
    """An annual licence of `seats` seats at `amount` cents a year, without trial."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"licence-{uuid4().hex[:10]}",
            kind=PlanKind.LICENSE,
            names={"en": "Licence", "fr": "Licence"},
            interval="year",
            overage_policy="warn",
            included_seats=seats,
        ),
    )
    await set_price(STAFF, plan.code, "EUR", amount)
    return plan
