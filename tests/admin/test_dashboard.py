"""The back office's dashboard: every figure counted right (seeded tenants, figures compared
with what they were before the seeding, since other tests' tenants share the database), and
only staff who read tenants see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from billing.book import BillingOverview, dangerously_billing_overview
from campaigns.book import DayActivity, dangerously_assessments_per_day
from core.errors import Forbidden
from tenants.book import Tally, TenantCounts, dangerously_count_tenants
from tests.admin import book_seed as seed
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser
from tests.conftest import TenantFixture, make_tenant


def _revenue(overview: BillingOverview) -> dict[str, tuple[int, ...]]:
    return {r.currency: (r.arr.amount, r.mrr.amount, r.subscriptions) for r in overview.revenue}


def _seats(overview: BillingOverview) -> dict[str, tuple[int, ...]]:
    return {s.plan_kind: (s.subscriptions, s.sold, s.used) for s in overview.seats}


def _delta(
    after: Mapping[str, tuple[int, ...]], before: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    changed = {}
    for key, values in after.items():
        old = before.get(key, (0,) * len(values))
        diff = tuple(a - b for a, b in zip(values, old, strict=True))
        if any(diff):
            changed[key] = diff
    return changed


@dataclass(frozen=True)
class Figures:
    counts: TenantCounts
    billing: BillingOverview
    days: list[DayActivity]


@dataclass(frozen=True)
class Book:
    tenants: dict[str, TenantFixture]
    before: Figures
    now: datetime  # read when the book was seeded: a run that crosses midnight stays consistent


@pytest.fixture
async def book(
    owner_url: str,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    account_manager: StaffFixture,
) -> Book:
    """Four tenants with known billing and activity:

    - A (FR company, trial): per-seat monthly, 10.00 EUR x 5 seats, active; a 10-seat pack
      valid today; 7 seats used; 3 assessments started today (2 completed today), 1 started
      two days ago, 1 started 40 days ago.
    - B (DE school, active): licence yearly 1,200.00 EUR, 50 seats included, past due since 3
      days; an invoice of 1,200.00 due yesterday, 200.00 paid; a paid one not overdue.
    - C: seat-pack plan, trialing, trial ending in 3 days; seat packs invoiced 360.00 USD two
      months ago (counted) and 999.00 USD 13 months ago (not counted).
    - D: per-seat, trialing, trial ending in 10 days (not this week).
    """
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    staff = account_manager.ctx
    before = Figures(
        await dangerously_count_tenants(staff),
        await dangerously_billing_overview(staff, now),
        await dangerously_assessments_per_day(staff, now),
    )
    tenant_c = await make_tenant("Gamma")
    tenant_d = await make_tenant("Delta")
    conn = await seed.owner(owner_url)
    try:
        await conn.execute(
            "UPDATE organization SET status = 'active', kind = 'school', country = 'DE'"
            " WHERE id = $1",
            tenant_b.id,
        )
        per_seat, _ = await seed.make_plan(conn, "per_seat", "month", {"EUR": 1000})
        licence, _ = await seed.make_plan(
            conn, "license", "year", {"EUR": 120000}, included_seats=50
        )
        packs, _ = await seed.make_plan(conn, "seat_pack", "year", {"USD": 36000}, pack_seats=10)
        start = now - timedelta(days=5)
        await seed.subscribe(conn, tenant_a.id, per_seat, "active", 5, "EUR", start)
        await seed.seat_pack(conn, tenant_a.id, 10, today - timedelta(days=1), today)
        await seed.seat_pack(
            conn, tenant_a.id, 99, today + timedelta(days=1), today + timedelta(days=9)
        )
        await seed.seat_balance(conn, tenant_a.id, start, 7)
        await seed.subscribe(
            conn,
            tenant_b.id,
            licence,
            "past_due",
            40,
            "EUR",
            start,
            past_due_since=now - timedelta(days=3),
        )
        await seed.invoice(
            conn,
            tenant_b.id,
            "EUR",
            status="open",
            issued_at=now - timedelta(days=31),
            due_on=today - timedelta(days=1),
            total=120000,
            amount_paid=20000,
        )
        await seed.invoice(
            conn,
            tenant_b.id,
            "EUR",
            status="open",
            issued_at=now,
            due_on=today + timedelta(days=30),
            total=5000,
        )
        await seed.subscribe(
            conn,
            tenant_c.id,
            packs,
            "trialing",
            1,
            "USD",
            start,
            trial_end=now + timedelta(days=3),
        )
        await seed.invoice(
            conn,
            tenant_c.id,
            "USD",
            status="paid",
            issued_at=now - timedelta(days=60),
            due_on=today - timedelta(days=30),
            total=36000,
            line_kind="seat_pack",
        )
        await seed.invoice(
            conn,
            tenant_c.id,
            "USD",
            status="paid",
            issued_at=now - timedelta(days=400),
            due_on=today - timedelta(days=370),
            total=99900,
            line_kind="seat_pack",
        )
        await seed.subscribe(
            conn,
            tenant_d.id,
            per_seat,
            "trialing",
            3,
            "EUR",
            start,
            trial_end=now + timedelta(days=10),
        )
        await seed.participations(conn, tenant_a.id, now, 2, completed=now)
        await seed.participations(conn, tenant_a.id, now, 1)
        await seed.participations(conn, tenant_a.id, now - timedelta(days=2), 1)
        await seed.participations(
            conn, tenant_b.id, now - timedelta(days=40), 1, completed=now - timedelta(days=40)
        )
    finally:
        await conn.close()
    return Book({"a": tenant_a, "b": tenant_b, "c": tenant_c, "d": tenant_d}, before, now)


def _tallies(tallies: list[Tally]) -> dict[str, tuple[int, ...]]:
    return {t.key: (t.count,) for t in tallies}


async def test_the_dashboard_counts_each_figure_right(
    book: Book, account_manager: StaffFixture
) -> None:
    staff = account_manager.ctx
    now, today = book.now, book.now.date()
    counts = await dangerously_count_tenants(staff)
    billing = await dangerously_billing_overview(staff, now)
    days = await dangerously_assessments_per_day(staff, now)
    before = book.before

    assert counts.total - before.counts.total == 2
    assert _delta(_tallies(counts.by_status), _tallies(before.counts.by_status)) == {
        "trial": (1,),
        "active": (1,),
    }
    assert _delta(_tallies(counts.by_kind), _tallies(before.counts.by_kind)) == {
        "company": (1,),
        "school": (1,),
    }
    assert _delta(_tallies(counts.by_country), _tallies(before.counts.by_country)) == {
        "FR": (1,),
        "DE": (1,),
    }

    # EUR: 10.00 x 5 seats x 12 months + 1,200.00 a year; USD: the pack sold 2 months ago.
    arr = {k: (v[0], v[2]) for k, v in _revenue(billing).items()}
    arr_before = {k: (v[0], v[2]) for k, v in _revenue(before.billing).items()}
    assert _delta(arr, arr_before) == {"EUR": (180000, 2), "USD": (36000, 1)}
    for revenue in billing.revenue:
        assert revenue.mrr.amount == (revenue.arr.amount * 2 + 12) // 24

    # sold: A 5 + the pack valid today (10), D 3 in trial; B the licence's 50; C no pack today.
    assert _delta(_seats(billing), _seats(before.billing)) == {
        "per_seat": (2, 18, 7),
        "license": (1, 50, 0),
        "seat_pack": (1, 0, 0),
    }

    tenants = book.tenants
    trials = {t.tenant_id for t in billing.trials_ending}
    assert tenants["c"].id in trials
    assert tenants["d"].id not in trials
    failed = [f for f in billing.failed_payments if f.tenant_id == tenants["b"].id]
    assert [(f.gateway, f.past_due_since is not None) for f in failed] == [("manual", True)]
    overdue = [i for i in billing.overdue_invoices if i.tenant_id == tenants["b"].id]
    assert [(i.amount_due.amount, i.amount_due.currency, i.due_on) for i in overdue] == [
        (100000, "EUR", today - timedelta(days=1))
    ]
    assert not {i.tenant_id for i in billing.overdue_invoices} & {
        tenants["a"].id,
        tenants["c"].id,
    }

    assert len(days) == 30
    assert days[-1].day == today
    assert days[0].day == today - timedelta(days=29)
    changes = {
        d.day: (d.started - b.started, d.completed - b.completed)
        for d, b in zip(days, before.days, strict=True)
        if (d.started, d.completed) != (b.started, b.completed)
    }
    assert changes == {today: (3, 2), today - timedelta(days=2): (1, 0)}


async def test_the_dashboard_page_shows_the_figures(book: Book, am_browser: Browser) -> None:
    response = await am_browser.get("/admin")
    assert response.status_code == 200
    page = response.text
    assert "<svg" in page
    assert "Tenants by status" in page
    assert book.tenants["c"].owner_ctx.tenant.name in page  # trial ending
    assert f'href="/admin/tenants/{book.tenants["b"].id}"' in page  # failed payment, overdue
    assert "1,000.00" in page  # B's amount due, en locale


async def test_support_reads_the_dashboard(support: StaffFixture, browser: Browser) -> None:
    await staff_login(browser, support)
    assert (await browser.get("/admin")).status_code == 200


async def test_a_content_editor_is_refused_the_dashboard(
    content_editor: StaffFixture, browser: Browser
) -> None:
    await staff_login(browser, content_editor)
    assert (await browser.get("/admin")).status_code == 403
    with pytest.raises(Forbidden):
        await dangerously_billing_overview(content_editor.ctx)
    with pytest.raises(Forbidden):
        await dangerously_count_tenants(content_editor.ctx)
    with pytest.raises(Forbidden):
        await dangerously_assessments_per_day(content_editor.ctx)


async def test_a_tenant_owner_finds_no_dashboard(tenant_a: TenantFixture, browser: Browser) -> None:
    await browser.login(tenant_a.owner)
    assert (await browser.get("/admin")).status_code == 404


async def test_without_the_book_a_global_transaction_still_sees_no_tenant_row(
    book: Book,
) -> None:
    from core.database import fetch, global_transaction

    async with global_transaction():
        rows = await fetch("SELECT 1 FROM subscription UNION ALL SELECT 1 FROM participation")
    assert rows == []
