"""The back office's tenants list: search, filters, sort and keyset pages, right with two
tenants and with 10,000, in a fixed number of statements per page; bad filters and page
links are refused with a message; only staff who read tenants see it."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote
from uuid import UUID, uuid4

import pytest

from billing.book import (
    PAGE_SIZE,
    TenantFilters,
    TenantPage,
    TenantRow,
    dangerously_list_tenants,
    tenant_filters,
)
from core.errors import Forbidden, Invalid
from tests.admin import book_seed as seed
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser
from tests.conftest import TenantFixture

NOW = datetime.now(UTC).replace(microsecond=0)


async def _all_pages(staff: StaffFixture, filters: TenantFilters) -> list[TenantPage]:
    pages = [await dangerously_list_tenants(staff.ctx, filters)]
    while pages[-1].next_cursor:
        pages.append(await dangerously_list_tenants(staff.ctx, filters, pages[-1].next_cursor))
    return pages


async def _first_pages(
    staff: StaffFixture, filters: TenantFilters, count: int = 3
) -> list[TenantRow]:
    """The rows of the first `count` pages, each resumed from the previous one's cursor."""
    rows: list[TenantRow] = []
    cursor = None
    for _ in range(count):
        page = await dangerously_list_tenants(staff.ctx, filters, cursor)
        rows.extend(page.items)
        cursor = page.next_cursor
    return rows


def _ids(page: TenantPage) -> list[UUID]:
    return [row.id for row in page.items]


@pytest.fixture
async def billed(
    owner_url: str, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> tuple[str, str]:
    """A on a per-seat plan (5 seats, a 10-seat pack valid today, 7 used) with a SIRET; B a
    German school with a VAT number and no subscription. The plan code and A's SIRET."""
    siret = f"{uuid4().int % 10**14:014d}"
    conn = await seed.owner(owner_url)
    try:
        await conn.execute("UPDATE organization SET siret = $2 WHERE id = $1", tenant_a.id, siret)
        await conn.execute(
            "UPDATE organization SET kind = 'school', country = 'DE', status = 'active',"
            " vat_number = $2 WHERE id = $1",
            tenant_b.id,
            f"DE{uuid4().int % 10**9:09d}",
        )
        plan, code = await seed.make_plan(conn, "per_seat", "month", {"EUR": 1000})
        now = datetime.now(UTC)  # not the module's NOW: a run may cross midnight since import
        start = now - timedelta(days=3)
        await seed.subscribe(conn, tenant_a.id, plan, "active", 5, "EUR", start)
        await seed.seat_pack(conn, tenant_a.id, 10, start.date(), now.date())
        await seed.seat_balance(conn, tenant_a.id, start, 7)
    finally:
        await conn.close()
    return code, siret


async def test_a_tenant_row_shows_its_plan_and_seats(
    billed: tuple[str, str],
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    account_manager: StaffFixture,
) -> None:
    code, _ = billed
    page = await dangerously_list_tenants(account_manager.ctx, tenant_filters(q=tenant_a.slug))
    assert [
        (r.id, r.plan, r.subscription_status, r.seats_used, r.seats_sold) for r in page.items
    ] == [(tenant_a.id, code, "active", 7, 15)]
    assert page.next_cursor is None
    assert code in page.plans
    other = await dangerously_list_tenants(account_manager.ctx, tenant_filters(q=tenant_b.slug))
    row = other.items[0]
    assert (row.kind, row.country, row.status, row.plan, row.seats_sold) == (
        "school",
        "DE",
        "active",
        None,
        None,
    )


async def test_search_finds_a_tenant_by_name_slug_siret_vat_or_member_email(
    billed: tuple[str, str],
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    account_manager: StaffFixture,
) -> None:
    _, siret = billed
    vat = await dangerously_list_tenants(account_manager.ctx, tenant_filters(q=tenant_b.slug))
    assert vat.items
    staff = account_manager.ctx
    for q, expected in [
        (tenant_a.slug, tenant_a.id),
        (tenant_a.slug.upper(), tenant_a.id),
        (siret, tenant_a.id),
        (tenant_a.member.email, tenant_a.id),  # a member's email, not the owner's
        (tenant_b.owner.email.upper(), tenant_b.id),
    ]:
        page = await dangerously_list_tenants(staff, tenant_filters(q=q))
        assert _ids(page) == [expected], q


async def test_search_by_vat_number_with_spaces(
    owner_url: str, tenant_b: TenantFixture, account_manager: StaffFixture
) -> None:
    vat = f"FR{uuid4().int % 10**11:011d}"
    conn = await seed.owner(owner_url)
    try:
        await conn.execute(
            "UPDATE organization SET vat_number = $2 WHERE id = $1", tenant_b.id, vat
        )
    finally:
        await conn.close()
    spaced = f"{vat[:4]} {vat[4:]}".lower()
    page = await dangerously_list_tenants(account_manager.ctx, tenant_filters(q=spaced))
    assert _ids(page) == [tenant_b.id]


async def test_filters_narrow_the_list(
    billed: tuple[str, str],
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    account_manager: StaffFixture,
) -> None:
    code, _ = billed
    staff = account_manager.ctx
    by_plan = await dangerously_list_tenants(staff, tenant_filters(plan=code))
    assert _ids(by_plan) == [tenant_a.id]
    for filters, present, absent in [
        (tenant_filters(kind="school"), tenant_b, tenant_a),
        (tenant_filters(status="active"), tenant_b, tenant_a),
        (tenant_filters(country="de"), tenant_b, tenant_a),
        (tenant_filters(kind="company", country="FR", status="trial"), tenant_a, tenant_b),
    ]:
        ids = {row.id for page in await _all_pages(account_manager, filters) for row in page.items}
        assert present.id in ids, filters
        assert absent.id not in ids, filters


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "castle"),
        ("status", "asleep"),
        ("plan", "Not A Code!"),
        ("country", "FRA"),
        ("sort", "price"),
        ("order", "sideways"),
        ("q", "x" * 201),
        ("q", "nul\x00byte"),
    ],
)
def test_a_filter_no_tenant_could_match_is_refused(field: str, value: str) -> None:
    with pytest.raises(Invalid) as refused:
        tenant_filters(**{field: value})
    assert refused.value.field == field


async def test_a_forged_cursor_or_one_of_another_sort_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture, account_manager: StaffFixture
) -> None:
    staff = account_manager.ctx
    page = await dangerously_list_tenants(staff, tenant_filters())
    assert page.next_cursor is not None or len(page.items) <= PAGE_SIZE
    for cursor in ["garbage!", "bmFtZXxhc2M", "Y3JlYXRlZHxhc2N8bm90LWEtZGF0ZXx4"]:
        with pytest.raises(Invalid):
            await dangerously_list_tenants(staff, tenant_filters(), cursor)
    if page.next_cursor:
        with pytest.raises(Invalid):
            await dangerously_list_tenants(staff, tenant_filters(sort="created"), page.next_cursor)


async def test_the_list_page_works_and_links_each_tenant(
    billed: tuple[str, str], tenant_a: TenantFixture, am_browser: Browser
) -> None:
    response = await am_browser.get("/admin/tenants", params={"q": tenant_a.slug})
    assert response.status_code == 200
    assert f'href="/admin/tenants/{tenant_a.id}"' in response.text
    assert "7 / 15" in response.text


@pytest.mark.parametrize(
    "params",
    [{"kind": "castle"}, {"country": "123"}, {"sort": "price"}, {"cursor": "garbage!"}],
)
async def test_bad_filters_show_the_page_again_with_a_message(
    am_browser: Browser, params: dict[str, str]
) -> None:
    response = await am_browser.get("/admin/tenants", params=params)
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert 'id="f-q"' in response.text  # the form is there to correct


async def test_support_reads_the_list(support: StaffFixture, browser: Browser) -> None:
    await staff_login(browser, support)
    assert (await browser.get("/admin/tenants")).status_code == 200


async def test_a_content_editor_is_refused_the_list(
    content_editor: StaffFixture, browser: Browser
) -> None:
    await staff_login(browser, content_editor)
    assert (await browser.get("/admin/tenants")).status_code == 403
    with pytest.raises(Forbidden):
        await dangerously_list_tenants(content_editor.ctx, tenant_filters())


async def test_a_tenant_owner_finds_no_list(tenant_a: TenantFixture, browser: Browser) -> None:
    await browser.login(tenant_a.owner)
    assert (await browser.get("/admin/tenants")).status_code == 404


async def test_a_disabled_staff_member_reads_nothing_even_with_a_context(
    owner_url: str, account_manager: StaffFixture
) -> None:
    conn = await seed.owner(owner_url)
    try:
        await conn.execute(
            "UPDATE staff_member SET disabled_at = now() WHERE user_id = $1",
            account_manager.user.id,
        )
    finally:
        await conn.close()
    with pytest.raises(Forbidden):
        await dangerously_list_tenants(account_manager.ctx, tenant_filters())


# --- 10,000 tenants ---------------------------------------------------------------------------

KINDS = ("company", "local_authority", "foreign_agency", "school", "other")
STATUSES = ("trial", "active", "suspended", "closed")
COUNT = 10_000


@pytest.fixture(scope="module")
async def ten_thousand(owner_url: str) -> AsyncIterator[tuple[str, str]]:
    """10,000 organizations named `Bulk <token> 00000`…, of kinds, statuses and countries in
    turn, created a minute apart; every third on a per-seat plan of 3 seats with 1 used. The
    token (in every name and slug) and the plan code. Seeded once for this module's slow tests
    and removed after them: every sweep over all tenants later in the suite would pay for them
    (a calibration, the periodic jobs)."""
    token = uuid4().hex[:8]
    conn = await seed.owner(owner_url)
    try:
        plan, code = await seed.make_plan(conn, "per_seat", "month", {"EUR": 500})
        await conn.execute(
            """INSERT INTO organization (id, name, slug, kind, country, status, created_at)
               SELECT gen_random_uuid(), 'Bulk ' || $1 || ' ' || lpad(i::text, 5, '0'),
                      'bulk-' || $1 || '-' || i, ($2::text[])[1 + i % 5],
                      (ARRAY['FR', 'DE', 'BE'])[1 + i % 3], ($3::text[])[1 + i % 4],
                      $4::timestamptz - make_interval(mins => i)
               FROM generate_series(0, $5 - 1) AS i""",
            token,
            list(KINDS),
            list(STATUSES),
            NOW,
            COUNT,
        )
        await conn.execute(
            """INSERT INTO subscription (tenant_id, id, plan_id, status, quantity, currency,
                   current_period_start, current_period_end, status_changed_at)
               SELECT o.id, gen_random_uuid(), $2, 'active', 3, 'EUR', $3::timestamptz,
                      $3::timestamptz + interval '30 days', $3::timestamptz
               FROM organization o WHERE o.slug LIKE 'bulk-' || $1 || '-%'
                 AND substring(o.slug from '[0-9]+$')::integer % 3 = 0""",
            token,
            plan,
            NOW - timedelta(days=1),
        )
        await conn.execute(
            """INSERT INTO seat_balance (tenant_id, id, period_start, used, capacity,
                   overage_policy, updated_at)
               SELECT s.tenant_id, gen_random_uuid(), s.current_period_start, 1, 3, 'warn', $2
               FROM subscription s WHERE s.plan_id = $1""",
            plan,
            NOW,
        )
    finally:
        await conn.close()
    yield token, code
    conn = await seed.owner(owner_url)
    try:
        ids = [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM organization WHERE slug LIKE 'bulk-' || $1 || '-%'", token
            )
        ]
        for table in ("seat_balance", "subscription"):
            await conn.execute(f"DELETE FROM {table} WHERE tenant_id = ANY($1::uuid[])", ids)  # noqa: S608 - a constant
        await conn.execute("DELETE FROM organization WHERE id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_ten_thousand_tenants_page_by_page_in_order(
    ten_thousand: tuple[str, str], account_manager: StaffFixture
) -> None:
    token, code = ten_thousand
    names = [f"Bulk {token} {i:05d}" for i in range(COUNT)]

    pages = await _all_pages(account_manager, tenant_filters(q=token))
    assert [len(p.items) for p in pages] == [PAGE_SIZE] * (COUNT // PAGE_SIZE)
    assert [row.name for p in pages for row in p.items] == sorted(names)

    newest = await _first_pages(
        account_manager, tenant_filters(q=token, sort="created", order="desc")
    )
    assert [row.name for row in newest] == names[:150]  # the i-th was made i minutes before NOW

    by_status = await _first_pages(
        account_manager, tenant_filters(q=token, sort="status", order="desc")
    )
    in_order = sorted(((STATUSES[i % 4], n) for i, n in enumerate(names)), reverse=True)
    assert [(r.status, r.name) for r in by_status] == in_order[:150]

    planned = await _all_pages(account_manager, tenant_filters(q=token, plan=code, kind="school"))
    found = [row for p in planned for row in p.items]
    expected = [n for i, n in enumerate(names) if i % 3 == 0 and i % 5 == 3]
    assert [row.name for row in found] == expected
    assert {(row.plan, row.seats_used, row.seats_sold) for row in found} == {(code, 1, 3)}


@pytest.mark.slow
async def test_a_page_costs_the_same_statements_whatever_the_number_of_tenants(
    ten_thousand: tuple[str, str],
    account_manager: StaffFixture,
    statements: list[str],
) -> None:
    token, code = ten_thousand
    staff = account_manager.ctx
    counts = []
    for filters in [
        tenant_filters(),
        tenant_filters(q=token, plan=code, country="FR", sort="created", order="desc"),
        tenant_filters(q="nobody-matches-this", kind="school"),
    ]:
        statements.clear()
        page = await dangerously_list_tenants(staff, filters)
        counts.append(len(statements))
        if page.next_cursor:
            statements.clear()
            await dangerously_list_tenants(staff, filters, page.next_cursor)
            counts.append(len(statements))
    assert set(counts) == {LIST_STATEMENTS}, statements


#: BEGIN READ ONLY with jalon.user_id, the staff check, the plans, the tenants a
#: member's email or the plan names, the page, its subscriptions and seats, COMMIT.
LIST_STATEMENTS = 7


@pytest.mark.slow
async def test_a_page_render_costs_the_same_statements_whatever_the_page(
    ten_thousand: tuple[str, str],
    am_browser: Browser,
    statements: list[str],
) -> None:
    token, code = ten_thousand
    first = await am_browser.get("/admin/tenants", params={"q": token})
    cursor = re.search(r'cursor=([^"&]+)', first.text)
    assert cursor is not None
    counts = []
    for params in [
        {"q": token},
        {"q": token, "cursor": unquote(html.unescape(cursor.group(1)))},
        {"plan": code, "sort": "created", "order": "desc"},
        {"q": "nobody-matches-this"},
    ]:
        statements.clear()
        response = await am_browser.get("/admin/tenants", params=params)
        assert response.status_code == 200, params
        counts.append(len(statements))
    assert counts == [RENDER_STATEMENTS] * 4, "\n".join(statements)


#: The list's seven, and the guard's transaction reading the signed-in person and staff role.
RENDER_STATEMENTS = 10
