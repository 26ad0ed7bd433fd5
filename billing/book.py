"""The book of business, billing's half: the tenants list with plans and seats, revenue,
seats sold against seats used, trials ending, failed payments and overdue invoices. Staff read
it across tenants in `tenants.book.dangerously_open_book`'s transaction, through the owner's
`SECURITY DEFINER` functions (migration `campaigns_2026_12_03t21_02_00_000000`).

**Revenue.** ARR is computed exactly in minor units per currency, MRR is ARR / 12 rounded half
up. Only subscriptions that are `active` or `past_due` count (a trial pays nothing yet; a
suspended or canceled subscription is not revenue):
- a per-seat plan: the price of its currency and category x the quantity, per interval
  (x 12 for a monthly plan);
- a licence: the flat price per interval (x 12 for a monthly one), whatever the seats;
- a seat-pack plan is prepaid, not recurring: its ARR is what seat packs were invoiced for
  (the `seat_pack` lines, excluding tax, of invoices issued, not void, in the last 12 months),
  whatever the subscription's status today.
Discounts and credit notes are not deducted: the figures are list prices, for the trend.

**Seats.** For every subscription in good standing (trialing, active, past due): sold is the
capacity of its current period as `billing.seats` computes it (the plan's allowance plus the
packs valid today, UTC), used is the period's `seat_balance.used`.

**Failed payments** are subscriptions `past_due` (`billing.dunning` puts them there on a
failed card or debit payment and on a transfer invoice left unpaid after its due date), oldest
first. **Overdue invoices**: issued (`open`) invoices whose due date has passed.

**The tenants list** is one statement per page whatever the number of tenants (plus the
book's three and the plan codes'): keyset paging on the sort key and the id, the billing
columns joined for the page's rows only. The search matches the name, slug, SIRET or VAT
number (substring, case-insensitive) or a member's email (substring): the tenants whose
members match come from one function across tenants (no transaction per matched person).

Every read across tenants is a `SECURITY DEFINER` function of the owner role that returns only
what the page shows (ADR 0024); no setting of the connection opens other tenants' rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from billing.money import Money
from core import keyset
from core.database import contains_pattern, fetch
from core.errors import Invalid
from tenants.book import KINDS, STATUSES, dangerously_open_book
from tenants.context import StaffContext

#: Tenants per page of the list.
PAGE_SIZE = 50
SORTS = ("name", "created", "status")
ORDERS = ("asc", "desc")
#: The longest search accepted.
MAX_SEARCH = 200
#: The most rows each list of the dashboard shows (the count says how many there are).
LIST_LIMIT = 100

BAD_KIND = "Choose a kind from the list."
BAD_STATUS = "Choose a status from the list."
BAD_PLAN = "Choose a plan from the list."
BAD_COUNTRY = "A country is a two-letter code, such as FR."
BAD_SORT = "Sort by name, creation date or status."
BAD_ORDER = "Sort in ascending or descending order."
BAD_SEARCH = "A search has at most {max} characters."
BAD_CURSOR = "This page link is not valid."
BAD_CHARACTERS = "This field contains characters that are not allowed."

_PLAN_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CONTROLS = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TenantFilters:
    """What the tenants list is asked for: a search, filters (None for all), the sort."""

    q: str = ""
    kind: str | None = None
    status: str | None = None
    plan: str | None = None
    country: str | None = None
    sort: str = "name"
    order: str = "asc"


def tenant_filters(
    q: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    plan: str | None = None,
    country: str | None = None,
    sort: str | None = None,
    order: str | None = None,
) -> TenantFilters:
    """The filters of the tenants list from what was typed (empty means all); `Invalid`, on
    the field at fault, for a value no tenant could have."""
    search = (q or "").strip()
    if len(search) > MAX_SEARCH:
        raise Invalid(BAD_SEARCH, field="q", max=MAX_SEARCH)
    if _CONTROLS.search(search):
        raise Invalid(BAD_CHARACTERS, field="q")
    if kind and kind not in KINDS:
        raise Invalid(BAD_KIND, field="kind")
    if status and status not in STATUSES:
        raise Invalid(BAD_STATUS, field="status")
    if plan and not _PLAN_CODE.match(plan):
        raise Invalid(BAD_PLAN, field="plan")
    chosen_country = (country or "").strip().upper() or None
    if chosen_country and not _COUNTRY.match(chosen_country):
        raise Invalid(BAD_COUNTRY, field="country")
    if sort and sort not in SORTS:
        raise Invalid(BAD_SORT, field="sort")
    if order and order not in ORDERS:
        raise Invalid(BAD_ORDER, field="order")
    return TenantFilters(
        q=search,
        kind=kind or None,
        status=status or None,
        plan=plan or None,
        country=chosen_country,
        sort=sort or "name",
        order=order or "asc",
    )


@dataclass(frozen=True)
class TenantRow:
    """One tenant of the list."""

    id: UUID
    name: str
    slug: str
    kind: str
    country: str
    status: str
    created_at: datetime
    #: the subscription's plan code and status, None without a subscription
    plan: str | None
    subscription_status: str | None
    #: seats used and sold in the current period, None without a subscription
    seats_used: int | None
    seats_sold: int | None


@dataclass(frozen=True)
class TenantPage:
    """One page of tenants; `next_cursor` resumes after it (None on the last page)."""

    items: list[TenantRow]
    next_cursor: str | None
    #: every plan code of the catalogue, for the plan filter
    plans: list[str] = field(default_factory=list)


_ORDER_COLUMNS = {
    "name": ("o.name", "o.id"),
    "created": ("o.created_at", "o.id"),
    "status": ("o.status", "o.name", "o.id"),
}


def _cursor_of(filters: TenantFilters, row: TenantRow) -> str:
    ident = str(row.id)
    if filters.sort == "created":
        return keyset.pack(filters.sort, filters.order, row.created_at.isoformat(), ident)
    if filters.sort == "status":
        return keyset.pack(filters.sort, filters.order, row.status, ident, row.name)
    return keyset.pack(filters.sort, filters.order, ident, row.name)


def _after(filters: TenantFilters, cursor: str | None) -> list[Any] | None:
    """The sort key values a cursor names, in `_ORDER_COLUMNS` order; `Invalid` for a forged
    one or one of another sort."""
    if not cursor:
        return None
    parts = keyset.unpack(cursor, 2)
    assert parts is not None
    if parts[0] != filters.sort or not parts[1].startswith(filters.order + "|"):
        raise Invalid(BAD_CURSOR, field="cursor")
    count = {"name": 4, "created": 4, "status": 5}[filters.sort]
    values = keyset.unpack(cursor, count)
    assert values is not None
    if filters.sort == "created":
        return [keyset.parse_stamp(values[2]), keyset.parse_id(values[3])]
    if filters.sort == "status":
        if values[2] not in STATUSES:
            raise Invalid(BAD_CURSOR, field="cursor")
        return [values[2], values[4], keyset.parse_id(values[3])]
    return [values[3], keyset.parse_id(values[2])]


#: The tenants a member-email search or a plan filter names: one statement, always run, so
#: that a page costs the same statements whatever the filters. Kept apart from the page's
#: statement, which reads `organization` alone: Citus crashed (signal 11) on the page's
#: reference table joined to these distributed tables in one query. Across tenants, so through
#: the owner's `SECURITY DEFINER` function (migration `campaigns_2026_12_03t21_02_00_000000`,
#: where the statement is, ADR 0024), as every cross-tenant read of the book.
_MATCHING_TENANTS = "SELECT id, why FROM book_matching_tenants($1, $2)"

#: The subscription and seats of the page's tenants (`$1`), on `$2`'s day: one statement.
_PAGE_FACTS = """SELECT tenant_id, plan, subscription_status, seats_used, seats_sold
FROM book_page_facts($1::uuid[], $2::date)"""


def _list_sql(
    filters: TenantFilters,
    after: list[Any] | None,
    by_member: list[UUID],
    by_plan: list[UUID],
) -> tuple[str, list[Any]]:
    """The page of organizations (`organization` alone), the member-email and plan matches
    given as tenant ids."""
    args: list[Any] = []
    conditions: list[str] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.q:
        pattern = param(contains_pattern(filters.q))
        compact = param(contains_pattern(filters.q.replace(" ", "")))
        conditions.append(
            f"""(o.name ILIKE {pattern} OR o.slug ILIKE {pattern}
                 OR o.siret LIKE {compact} OR o.vat_number ILIKE {compact}
                 OR o.id = ANY({param(by_member)}::uuid[]))"""
        )
    for column, value in (
        ("o.kind", filters.kind),
        ("o.status", filters.status),
        ("o.country", filters.country),
    ):
        if value is not None:
            conditions.append(f"{column} = {param(value)}")
    if filters.plan is not None:
        conditions.append(f"o.id = ANY({param(by_plan)}::uuid[])")
    columns = _ORDER_COLUMNS[filters.sort]
    direction = "DESC" if filters.order == "desc" else "ASC"
    if after is not None:
        placeholders = ", ".join(param(value) for value in after)
        comparison = "<" if filters.order == "desc" else ">"
        conditions.append(f"({', '.join(columns)}) {comparison} ({placeholders})")
    order = ", ".join(f"{column} {direction}" for column in columns)
    where = " AND ".join(conditions) or "TRUE"
    sql = f"""
SELECT o.id, o.name, o.slug, o.kind, o.country, o.status, o.created_at
FROM organization o WHERE {where} ORDER BY {order} LIMIT {param(PAGE_SIZE + 1)}"""  # noqa: S608 - constant clauses, values bound
    return sql, args


def _row(row: dict[str, Any], facts: dict[str, Any] | None) -> TenantRow:
    return TenantRow(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        kind=row["kind"],
        country=row["country"].strip(),
        status=row["status"],
        created_at=row["created_at"],
        plan=facts["plan"] if facts else None,
        subscription_status=facts["subscription_status"] if facts else None,
        seats_used=facts["seats_used"] if facts else None,
        seats_sold=facts["seats_sold"] if facts else None,
    )


async def dangerously_list_tenants(
    staff: StaffContext,
    filters: TenantFilters,
    cursor: str | None = None,
    *,
    at: datetime | None = None,
) -> TenantPage:
    """One page (`PAGE_SIZE`) of the tenants matching `filters`, in their order, after
    `cursor`; `Invalid` for a cursor that is forged or of another sort. Ten statements,
    whatever the number of tenants and the filters: the book's transaction
    (`dangerously_open_book`), the plan codes, the tenants a member's email or the plan
    names, the page, and its subscriptions and seats."""
    after = _after(filters, cursor)
    today = (at or datetime.now(UTC)).astimezone(UTC).date()
    async with dangerously_open_book(staff):
        plans = [row["code"] for row in await fetch("SELECT code FROM plan ORDER BY code")]
        matches = await fetch(
            _MATCHING_TENANTS, contains_pattern(filters.q) if filters.q else None, filters.plan
        )
        by_member = list({m["id"] for m in matches if m["why"] == "member"})
        by_plan = list({m["id"] for m in matches if m["why"] == "plan"})
        sql, args = _list_sql(filters, after, by_member, by_plan)
        rows = (await fetch(sql, *args))[: PAGE_SIZE + 1]
        ids = [row["id"] for row in rows[:PAGE_SIZE]]
        facts = {f["tenant_id"]: f for f in await fetch(_PAGE_FACTS, ids, today)}
    items = [_row(row, facts.get(row["id"])) for row in rows[:PAGE_SIZE]]
    more = len(rows) > PAGE_SIZE
    return TenantPage(items, _cursor_of(filters, items[-1]) if more else None, plans)


# --- the dashboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Revenue:
    """Recurring revenue in one currency (see the module's documentation)."""

    currency: str
    arr: Money
    mrr: Money
    #: subscriptions counted (active or past due, seat-pack plans but those without sales)
    subscriptions: int


@dataclass(frozen=True)
class SeatTally:
    """Seats sold and used this period, for the subscriptions of one plan kind."""

    plan_kind: str
    subscriptions: int
    sold: int
    used: int


@dataclass(frozen=True)
class TrialEnding:
    tenant_id: UUID
    tenant_name: str
    plan: str
    trial_end: datetime


@dataclass(frozen=True)
class FailedPayment:
    tenant_id: UUID
    tenant_name: str
    plan: str
    gateway: str
    past_due_since: datetime | None


@dataclass(frozen=True)
class OverdueInvoice:
    tenant_id: UUID
    tenant_name: str
    invoice_id: UUID
    number: str
    due_on: date
    amount_due: Money


@dataclass(frozen=True)
class BillingOverview:
    """Billing's figures of the dashboard at one moment."""

    revenue: list[Revenue]
    seats: list[SeatTally]
    trials_ending: list[TrialEnding]
    failed_payments: list[FailedPayment]
    overdue_invoices: list[OverdueInvoice]

    @property
    def seats_sold(self) -> int:
        return sum(tally.sold for tally in self.seats)

    @property
    def seats_used(self) -> int:
        return sum(tally.used for tally in self.seats)


# The dashboard's statements across tenants, each a `SECURITY DEFINER` function of the owner
# (migration `campaigns_2026_12_03t21_02_00_000000`, ADR 0024).
_REVENUE = "SELECT currency, subscriptions, arr FROM book_revenue($1, $2)"
_SEATS = "SELECT plan_kind, subscriptions, sold, used FROM book_seats($1::date)"
_TRIALS = "SELECT tenant_id, tenant_name, plan, trial_end FROM book_trials_ending($1, $2, $3)"
_FAILED = """SELECT tenant_id, tenant_name, plan, gateway, past_due_since
FROM book_failed_payments($1)"""
_OVERDUE = """SELECT tenant_id, tenant_name, invoice_id, number, due_on, currency, amount_due
FROM book_overdue_invoices($1::date, $2)"""


def _mrr(arr: int) -> int:
    """ARR / 12 in minor units, rounded half up (ARR is never negative)."""
    return (arr * 2 + 12) // 24


async def dangerously_billing_overview(
    staff: StaffContext, at: datetime | None = None
) -> BillingOverview:
    """The dashboard's billing figures at `at` (now by default): revenue per currency, seats
    sold and used per plan kind, trials ending within 7 days, failed payments, overdue
    invoices (each list at most `LIST_LIMIT` rows)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    today = moment.date()
    async with dangerously_open_book(staff):
        revenue = await fetch(_REVENUE, moment - timedelta(days=365), moment)
        seats = await fetch(_SEATS, today)
        trials = await fetch(_TRIALS, moment, moment + timedelta(days=7), LIST_LIMIT)
        failed = await fetch(_FAILED, LIST_LIMIT)
        overdue = await fetch(_OVERDUE, today, LIST_LIMIT)
    return BillingOverview(
        revenue=[
            Revenue(
                currency=(code := row["currency"].strip()),
                arr=Money(int(row["arr"]), code),
                mrr=Money(_mrr(int(row["arr"])), code),
                subscriptions=row["subscriptions"],
            )
            for row in revenue
        ],
        seats=[
            SeatTally(row["plan_kind"], row["subscriptions"], int(row["sold"]), int(row["used"]))
            for row in seats
        ],
        trials_ending=[TrialEnding(**row) for row in trials],
        failed_payments=[FailedPayment(**row) for row in failed],
        overdue_invoices=[
            OverdueInvoice(
                tenant_id=row["tenant_id"],
                tenant_name=row["tenant_name"],
                invoice_id=row["invoice_id"],
                number=row["number"] or "",
                due_on=row["due_on"],
                amount_due=Money(int(row["amount_due"]), row["currency"].strip()),
            )
            for row in overdue
        ],
    )


async def dangerously_plan_codes(staff: StaffContext) -> list[str]:
    """Every plan code of the catalogue, for the plan filter (retired plans included: their
    subscribers remain)."""
    async with dangerously_open_book(staff):
        return [row["code"] for row in await fetch("SELECT code FROM plan ORDER BY code")]
