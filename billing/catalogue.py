"""The catalogue: plans and their prices per currency (global tables, the same for every
tenant). Staff and the demo seed it; the pricing page and subscriptions read it.

A plan in use is retired, never deleted: subscriptions keep pointing at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from billing.money import Money, currency_code, minor_digits
from core.database import DB, dangerously_switch_tenant, execute, fetch, global_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import N_
from tenants.context import Actor, StaffContext
from tenants.permissions import StaffPermission, StaffRole, staff_permissions_of
from tenants.staff_trail import record_staff_action


class PlanKind(StrEnum):
    #: a price per seat per interval; the quantity is the number of seats
    PER_SEAT = "per_seat"
    #: packs of `pack_seats` seats, valid `pack_validity_months`, bought one pack at a time
    SEAT_PACK = "seat_pack"
    #: a licence of `included_seats` seats for a flat price per interval
    LICENSE = "license"


class OveragePolicy(StrEnum):
    BLOCK = "block"
    BILL = "bill"
    WARN = "warn"


@dataclass(frozen=True)
class Plan:
    """One offer of the catalogue, with its names per locale."""

    id: UUID
    code: str
    kind: PlanKind
    names: dict[str, str]
    descriptions: dict[str, str]
    #: "month" or "year"
    interval: str
    trial_days: int
    overage_policy: OveragePolicy
    included_seats: int | None
    pack_seats: int | None
    pack_validity_months: int | None
    retired_at: datetime | None
    created_at: datetime

    def name(self, locale: str) -> str:
        """The plan's name in `locale`, else in English, else its code."""
        return self.names.get(locale) or self.names.get("en") or self.code

    def description(self, locale: str) -> str:
        return self.descriptions.get(locale) or self.descriptions.get("en") or ""


@dataclass(frozen=True)
class PlanPrice:
    """What a plan costs in one currency and price category, in minor units: per seat per
    interval (per_seat), per pack (seat_pack) or per licence per interval (license)."""

    plan_id: UUID
    currency: str
    category: str
    unit_amount: int
    overage_unit_amount: int | None

    @property
    def unit(self) -> Money:
        return Money(self.unit_amount, self.currency)


PLAN_COLUMNS = (
    "p.id AS plan_id, p.code AS plan_code, p.kind AS plan_kind, p.names AS plan_names, "
    "p.descriptions AS plan_descriptions, p.interval AS plan_interval, "
    "p.trial_days AS plan_trial_days, p.overage_policy AS plan_overage_policy, "
    "p.included_seats AS plan_included_seats, p.pack_seats AS plan_pack_seats, "
    "p.pack_validity_months AS plan_pack_validity_months, p.retired_at AS plan_retired_at, "
    "p.created_at AS plan_created_at"
)


def _json(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    loaded = json.loads(value) if isinstance(value, str) else value
    return {str(key): str(text) for key, text in dict(loaded).items()}


def plan_from_row(row: dict[str, Any]) -> Plan:
    """A `Plan` from a row selected with `PLAN_COLUMNS` (columns prefixed `plan_`)."""
    return Plan(
        id=row["plan_id"],
        code=row["plan_code"],
        kind=PlanKind(row["plan_kind"]),
        names=_json(row["plan_names"]),
        descriptions=_json(row["plan_descriptions"]),
        interval=row["plan_interval"],
        trial_days=row["plan_trial_days"],
        overage_policy=OveragePolicy(row["plan_overage_policy"]),
        included_seats=row["plan_included_seats"],
        pack_seats=row["plan_pack_seats"],
        pack_validity_months=row["plan_pack_validity_months"],
        retired_at=row["plan_retired_at"],
        created_at=row["plan_created_at"],
    )


# --- reading ------------------------------------------------------------------------------

PLAN_SQL = f"SELECT {PLAN_COLUMNS} FROM plan p"  # noqa: S608 (constant columns)


def price_from_row(row: dict[str, Any]) -> PlanPrice:
    return PlanPrice(
        plan_id=row["plan_id"],
        currency=row["currency"].strip(),
        category=row["category"],
        unit_amount=row["unit_amount"],
        overage_unit_amount=row["overage_unit_amount"],
    )


@dataclass(frozen=True)
class PlanFields:
    """What staff (or the demo) write to create or edit a plan."""

    code: str
    kind: PlanKind | str
    names: dict[str, str]
    interval: str
    overage_policy: OveragePolicy | str
    descriptions: dict[str, str] = field(default_factory=dict)
    trial_days: int = 0
    included_seats: int | None = None
    pack_seats: int | None = None
    pack_validity_months: int | None = None


@dataclass(frozen=True)
class PlanOffer:
    """A plan on the pricing page with its prices, by currency then category."""

    plan: Plan
    prices: list[PlanPrice]

    def prices_in(self, currency: str) -> list[PlanPrice]:
        return [price for price in self.prices if price.currency == currency]


CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
INTERVALS = ("month", "year")
CATEGORIES = ("standard", "public", "reduced", "full")

BAD_CODE = N_("A plan code is 1 to 64 lower-case letters, digits, dashes or underscores.")
BAD_KIND = N_("Unknown kind of plan.")
BAD_INTERVAL = N_("A plan is billed every month or every year.")
BAD_POLICY = N_("Unknown overage policy.")
BAD_NAMES = N_("A plan needs a name in English, of at most 100 characters in each language.")
BAD_TRIAL = N_("A trial lasts 0 to 366 days.")
LICENSE_SEATS = N_("A licence states how many seats it includes.")
PACK_SEATS = N_("A seat pack states how many seats it holds and for how many months.")
PER_SEAT_ONLY = N_("A per-seat plan has neither included seats nor packs.")
BAD_AMOUNT = N_("A price is a whole number of cents, zero or more.")
BAD_CATEGORY = N_("Unknown price category.")
CODE_TAKEN = N_("A plan with this code already exists.")
PLAN_IN_USE = N_("This plan is in use: retire it instead of deleting it.")
UNKNOWN_PLAN = N_("Unknown plan.")
MAX_AMOUNT = 10**12


def check_plan(fields: PlanFields) -> PlanFields:
    """`fields` normalised, or `Invalid` naming the first wrong one."""
    if not CODE.fullmatch(fields.code):
        raise Invalid(BAD_CODE, field="code")
    try:
        kind = PlanKind(fields.kind)
    except ValueError:
        raise Invalid(BAD_KIND, field="kind") from None
    if fields.interval not in INTERVALS:
        raise Invalid(BAD_INTERVAL, field="interval")
    try:
        policy = OveragePolicy(fields.overage_policy)
    except ValueError:
        raise Invalid(BAD_POLICY, field="overage_policy") from None
    names = {key: value.strip() for key, value in fields.names.items() if value.strip()}
    if not names.get("en") or any(len(value) > 100 for value in names.values()):
        raise Invalid(BAD_NAMES, field="names")
    if not 0 <= fields.trial_days <= 366:
        raise Invalid(BAD_TRIAL, field="trial_days")
    seats, pack, months = fields.included_seats, fields.pack_seats, fields.pack_validity_months
    if kind == PlanKind.LICENSE and (seats is None or not 0 < seats <= 1_000_000):
        raise Invalid(LICENSE_SEATS, field="included_seats")
    if kind == PlanKind.SEAT_PACK and (
        pack is None or months is None or not 0 < pack <= 1_000_000 or not 0 < months <= 120
    ):
        raise Invalid(PACK_SEATS, field="pack_seats")
    if kind == PlanKind.PER_SEAT and (seats is not None or pack is not None):
        raise Invalid(PER_SEAT_ONLY, field="kind")
    descriptions = {key: value.strip() for key, value in fields.descriptions.items()}
    return replace(fields, kind=kind, overage_policy=policy, names=names, descriptions=descriptions)


def _is_amount(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_AMOUNT


def system_staff(label: str = "system") -> StaffContext:
    """The system acting as staff on the catalogue: for the demo, seeding and the CLI."""
    return StaffContext(
        actor=Actor.system(label),
        role=StaffRole.SUPERADMIN.value,
        permissions=staff_permissions_of(StaffRole.SUPERADMIN.value),
    )


async def _plan_by_code(code: str) -> Plan | None:
    rows = await fetch(PLAN_SQL + " WHERE p.code = $1", code)
    return plan_from_row(rows[0]) if rows else None


async def plan_by_code(code: str) -> Plan:
    """The plan `code` names, retired or not; `NotFound` otherwise. Joins an open
    transaction (the catalogue is global: any transaction reads it)."""
    if DB.current_transaction.get() is not None:
        plan = await _plan_by_code(code)
    else:
        async with global_transaction():
            plan = await _plan_by_code(code)
    if plan is None:
        raise NotFound(UNKNOWN_PLAN)
    return plan


async def plan_price(plan_id: UUID, currency: str, category: str = "standard") -> PlanPrice | None:
    """The price of plan `plan_id` in `currency` and `category`, if the catalogue has one.
    Joins an open transaction or opens one without a tenant."""
    sql = "SELECT * FROM plan_price WHERE plan_id = $1 AND currency = $2 AND category = $3"
    if DB.current_transaction.get() is not None:
        rows = await fetch(sql, plan_id, currency, category)
    else:
        async with global_transaction():
            rows = await fetch(sql, plan_id, currency, category)
    return price_from_row(rows[0]) if rows else None


async def _insert_plan(staff: StaffContext, fields: PlanFields) -> Plan:
    """Insert checked `fields` as a new plan, in the open transaction, and audit it."""
    if await _plan_by_code(fields.code) is not None:
        raise Conflict(CODE_TAKEN, field="code")
    await execute(
        """
        INSERT INTO plan (id, code, kind, names, descriptions, interval, trial_days,
            overage_policy, included_seats, pack_seats, pack_validity_months, created_at)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)
        """,
        uuid4(),
        fields.code,
        str(fields.kind),
        json.dumps(fields.names),
        json.dumps(fields.descriptions),
        fields.interval,
        fields.trial_days,
        str(fields.overage_policy),
        fields.included_seats,
        fields.pack_seats,
        fields.pack_validity_months,
        datetime.now(UTC),
    )
    plan = await _plan_by_code(fields.code)
    assert plan is not None
    await record_staff_action(
        staff, "plan.created", "plan", plan.id, code=plan.code, kind=str(plan.kind)
    )
    return plan


async def create_plan(staff: StaffContext, fields: PlanFields) -> Plan:
    """Add a plan to the catalogue (no price yet: `set_price`). `Conflict` when its code is
    taken. Audited (`plan.created`)."""
    staff.require(StaffPermission.BILLING_MANAGE)
    fields = check_plan(fields)
    async with global_transaction(staff.user_id):
        return await _insert_plan(staff, fields)


async def _update_plan(staff: StaffContext, code: str, fields: PlanFields) -> Plan:
    """Write checked `fields` over plan `code`'s editable columns, in the open transaction,
    and audit it."""
    plan = await _plan_by_code(code)
    if plan is None:
        raise NotFound(UNKNOWN_PLAN)
    await execute(
        """
        UPDATE plan SET names = $2::jsonb, descriptions = $3::jsonb, trial_days = $4,
            overage_policy = $5
        WHERE id = $1
        """,
        plan.id,
        json.dumps(fields.names),
        json.dumps(fields.descriptions),
        fields.trial_days,
        str(fields.overage_policy),
    )
    edited = await _plan_by_code(code)
    assert edited is not None
    await record_staff_action(staff, "plan.edited", "plan", plan.id, code=plan.code)
    return edited


async def edit_plan(staff: StaffContext, code: str, fields: PlanFields) -> Plan:
    """Change plan `code`'s names, descriptions, trial and overage policy. Its kind, interval
    and seats are what its subscribers bought: they do not change (make a new plan).
    Audited (`plan.edited`)."""
    staff.require(StaffPermission.BILLING_MANAGE)
    fields = check_plan(fields)
    async with global_transaction(staff.user_id):
        return await _update_plan(staff, code, fields)


@dataclass(frozen=True)
class PriceInput:
    """One price as staff write it (minor units), checked by `check_price`."""

    currency: str
    unit_amount: int
    category: str = "standard"
    overage_unit_amount: int | None = None


def check_price(price: PriceInput) -> PriceInput:
    """`price` with its currency normalised, or `Invalid` naming the wrong field."""
    currency = currency_code(price.currency)
    if price.category not in CATEGORIES:
        raise Invalid(BAD_CATEGORY, field="category")
    amounts = {"unit_amount": price.unit_amount, "overage_unit_amount": price.overage_unit_amount}
    for name, amount in amounts.items():
        if amount is not None and not _is_amount(amount):
            raise Invalid(BAD_AMOUNT, field=name)
    return replace(price, currency=currency)


async def _upsert_price(staff: StaffContext, plan: Plan, price: PriceInput) -> PlanPrice:
    """Add or replace a checked price of `plan`, in the open transaction, and audit it."""
    await execute(
        """
        INSERT INTO plan_price (plan_id, currency, category, unit_amount, overage_unit_amount)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (plan_id, currency, category) DO UPDATE
        SET unit_amount = EXCLUDED.unit_amount,
            overage_unit_amount = EXCLUDED.overage_unit_amount
        """,
        plan.id,
        price.currency,
        price.category,
        price.unit_amount,
        price.overage_unit_amount,
    )
    await record_staff_action(
        staff,
        "plan.price_set",
        "plan",
        plan.id,
        code=plan.code,
        currency=price.currency,
        category=price.category,
        unit_amount=price.unit_amount,
        overage_unit_amount=price.overage_unit_amount,
    )
    return PlanPrice(
        plan.id, price.currency, price.category, price.unit_amount, price.overage_unit_amount
    )


async def set_price(
    staff: StaffContext,
    code: str,
    currency: str,
    unit_amount: int,
    *,
    category: str = "standard",
    overage_unit_amount: int | None = None,
) -> PlanPrice:
    """Set (add or replace) plan `code`'s price in `currency` and `category`. Subscribers
    pay the new price from their next period. Audited (`plan.price_set`)."""
    staff.require(StaffPermission.BILLING_MANAGE)
    price = check_price(PriceInput(currency, unit_amount, category, overage_unit_amount))
    async with global_transaction(staff.user_id):
        plan = await _plan_by_code(code)
        if plan is None:
            raise NotFound(UNKNOWN_PLAN)
        return await _upsert_price(staff, plan, price)


async def save_plan(
    staff: StaffContext,
    fields: PlanFields,
    prices: Sequence[PriceInput] = (),
    *,
    code: str | None = None,
) -> Plan:
    """Create a plan (`code` None) or edit plan `code`, and set `prices`, all in one
    transaction: an `Invalid` or a `Conflict` (a code taken) leaves nothing written. The
    back office's plan form. Audited as `create_plan`, `edit_plan` and `set_price` are."""
    staff.require(StaffPermission.BILLING_MANAGE)
    fields = check_plan(fields)
    checked = [check_price(price) for price in prices]
    async with global_transaction(staff.user_id):
        plan = (
            await _insert_plan(staff, fields)
            if code is None
            else await _update_plan(staff, code, fields)
        )
        for price in checked:
            await _upsert_price(staff, plan, price)
    return plan


async def retire_plan(staff: StaffContext, code: str, *, at: datetime) -> Plan:
    """Stop offering plan `code` from `at`: it leaves the pricing page and no one new may
    choose it; its subscribers keep it. Retiring twice keeps the first date. Audited
    (`plan.retired`, with the staff member's reason when they gave one)."""
    staff.require(StaffPermission.BILLING_MANAGE)
    async with global_transaction(staff.user_id):
        await execute(
            "UPDATE plan SET retired_at = coalesce(retired_at, $2::timestamptz) WHERE code = $1",
            code,
            at,
        )
        plan = await _plan_by_code(code)
        if plan is None:
            raise NotFound(UNKNOWN_PLAN)
        await record_staff_action(staff, "plan.retired", "plan", plan.id, code=code, at=at)
    return plan


async def restore_plan(staff: StaffContext, code: str) -> Plan:
    """Offer retired plan `code` again (undoes `retire_plan`: nothing was deleted, and no
    subscriber lost it). Audited (`plan.restored`). A plan on offer stays as it is."""
    staff.require(StaffPermission.BILLING_MANAGE)
    async with global_transaction(staff.user_id):
        plan = await _plan_by_code(code)
        if plan is None:
            raise NotFound(UNKNOWN_PLAN)
        if plan.retired_at is not None:
            await execute("UPDATE plan SET retired_at = NULL WHERE id = $1", plan.id)
            await record_staff_action(
                staff, "plan.restored", "plan", plan.id, code=code, retired_at=plan.retired_at
            )
        restored = await _plan_by_code(code)
    assert restored is not None
    return restored


async def dangerously_delete_plan(staff: StaffContext, code: str) -> None:
    """Delete plan `code` and its prices: only a plan no subscription of any tenant has ever
    referenced (`Conflict` otherwise: retire it). The check reads every tenant's
    subscriptions, hence the name; it learns only whether one exists."""
    staff.require(StaffPermission.BILLING_MANAGE)
    async with global_transaction(staff.user_id):
        plan = await _plan_by_code(code)
        if plan is None:
            raise NotFound(UNKNOWN_PLAN)
        try:
            await execute("DELETE FROM plan_price WHERE plan_id = $1", plan.id)
            await execute("DELETE FROM plan WHERE id = $1", plan.id)
        except asyncpg.ForeignKeyViolationError:
            raise Conflict(PLAN_IN_USE) from None
        await record_staff_action(staff, "plan.deleted", "plan", plan.id, code=code)


async def active_offers() -> list[PlanOffer]:
    """The plans on offer today (not retired), each with its prices, for the pricing page
    and self-serve: per-seat plans first, then packs, then licences."""
    async with global_transaction():
        plans = await fetch(PLAN_SQL + " WHERE p.retired_at IS NULL ORDER BY p.created_at, p.code")
        prices = await fetch(
            """
            SELECT pp.* FROM plan_price pp JOIN plan p ON p.id = pp.plan_id
            WHERE p.retired_at IS NULL ORDER BY pp.currency, pp.unit_amount
            """
        )
    by_plan: dict[UUID, list[PlanPrice]] = {}
    for row in prices:
        by_plan.setdefault(row["plan_id"], []).append(price_from_row(row))
    order = list(PlanKind)
    offers = [PlanOffer(plan_from_row(row), by_plan.get(row["plan_id"], [])) for row in plans]
    offers.sort(key=lambda offer: order.index(offer.plan.kind))
    return offers


# --- the back office's catalogue --------------------------------------------------------------


async def all_offers() -> list[PlanOffer]:
    """Every plan, on offer or retired, each with all its prices: the back office's
    catalogue. Plans on offer first, then retired ones; each group by kind, then age."""
    async with global_transaction():
        plans = await fetch(PLAN_SQL + " ORDER BY p.created_at, p.code")
        prices = await fetch("SELECT * FROM plan_price ORDER BY currency, category, unit_amount")
    by_plan: dict[UUID, list[PlanPrice]] = {}
    for row in prices:
        by_plan.setdefault(row["plan_id"], []).append(price_from_row(row))
    order = list(PlanKind)
    offers = [PlanOffer(plan_from_row(row), by_plan.get(row["plan_id"], [])) for row in plans]
    offers.sort(key=lambda o: (o.plan.retired_at is not None, order.index(o.plan.kind)))
    return offers


async def dangerously_subscriber_counts(staff: StaffContext) -> dict[UUID, int]:
    """How many organizations' subscriptions point at each plan (canceled ones included: a
    plan they reference cannot be deleted), by plan id.

    Subscriptions are tenant-owned, under row-level security: this reads them organization
    by organization, in one read transaction whose tenant it switches for each (one small
    indexed query per organization; it learns plan ids only).
    """
    staff.require(StaffPermission.TENANTS_READ)
    counts: dict[UUID, int] = {}
    async with global_transaction(staff.user_id):
        tenants = [row["id"] for row in await fetch("SELECT id FROM organization ORDER BY id")]
        for tenant_id in tenants:
            await dangerously_switch_tenant(tenant_id)
            rows = await fetch("SELECT plan_id FROM subscription WHERE tenant_id = $1", tenant_id)
            for row in rows:
                counts[row["plan_id"]] = counts.get(row["plan_id"], 0) + 1
    return counts


BAD_PRICE = N_("Write a price such as 1200.50 or 1 200,50, zero or more.")
AMBIGUOUS_PRICE = N_(
    "A comma followed by three digits is ambiguous (a thousands separator?): write 1200 or 1200.00."
)
AMBIGUOUS_POINT_PRICE = N_(
    "A point followed by three digits is ambiguous (a thousands separator?): "
    "write 1200 or 1 200,00."
)
NEGATIVE_PRICE = N_("A price cannot be negative.")
PRICE_DECIMALS = N_("This currency has {digits} decimals at most.")
TOO_LARGE_PRICE = N_("That price is too large.")
#: A price as a person types it: digits grouped by spaces (or a thousands separator that
#: is not the decimal one), then one decimal separator and decimals.
_PRICE = re.compile(r"-?[0-9]+(?:[.,][0-9]+)?", re.ASCII)
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")


def parse_price(text: str, currency: str, *, field: str = "unit_amount") -> int:
    """A price typed in major units ("1200.50", "1 200,50", "1,200.50") as minor units of
    `currency` (an ISO 4217 code, already checked); `Invalid` on `field` when it is not a
    price: negative, more decimals than the currency has, or absurd. A lone comma or point
    followed by exactly three digits ("1,200", "1.200") is refused: it may group thousands
    (1 200 in French or German) or separate decimals (1.20 in English)."""
    compact = _SPACES.sub("", text.strip())
    if "." in compact and "," in compact:
        # both: the last one is the decimal separator, the other groups thousands
        decimal_sep = "." if compact.rfind(".") > compact.rfind(",") else ","
        thousands = "," if decimal_sep == "." else "."
        whole, _, decimals = compact.rpartition(decimal_sep)
        groups = whole.lstrip("-").split(thousands)
        if not groups[0] or any(len(group) != 3 for group in groups[1:]):
            raise Invalid(BAD_PRICE, field=field)
        compact = whole.replace(thousands, "") + "." + decimals
    if _PRICE.fullmatch(compact) is None:
        raise Invalid(BAD_PRICE, field=field)
    if "," in compact and len(compact.rpartition(",")[2]) == 3:
        raise Invalid(AMBIGUOUS_PRICE, field=field)
    if "." in compact and "," not in text and len(compact.rpartition(".")[2]) == 3:
        raise Invalid(AMBIGUOUS_POINT_PRICE, field=field)
    if compact.startswith("-") and compact.strip("-0.,"):
        raise Invalid(NEGATIVE_PRICE, field=field)
    digits = minor_digits(currency)
    try:
        minor = Decimal(compact.replace(",", ".").lstrip("-")).scaleb(digits)
    except DecimalException:
        raise Invalid(BAD_PRICE, field=field) from None
    if minor != minor.to_integral_value():
        raise Invalid(PRICE_DECIMALS, field=field, digits=digits)
    if minor > MAX_AMOUNT:
        raise Invalid(TOO_LARGE_PRICE, field=field)
    return int(minor)
