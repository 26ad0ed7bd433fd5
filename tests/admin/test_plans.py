"""The plans catalogue in the back office (admin.plans, billing.catalogue): every plan with
its prices and subscribers; creating, editing, retiring and restoring a plan, audited in the
staff trail (an edit and a restore with their reason; a price change of a plan with
subscribers confirmed first); bad input refused field by field with nothing written; roles
without the permission refused, tenants told the back office does not exist; a code in a path
that no plan could have (a NUL, 300 characters) is a 404, never a 500."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from billing.catalogue import (
    PlanFields,
    PlanKind,
    create_plan,
    parse_price,
    plan_by_code,
    set_price,
    system_staff,
)
from billing.subscriptions import subscribe
from core.database import fetch, transaction
from core.errors import Invalid
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser
from tests.conftest import TenantFixture

NOW = datetime.now(UTC)
REASON = "Prices of 2027, agreed with sales"


def _code() -> str:
    return f"plan-{uuid4().hex[:8]}"


def _form(plan_code: str, **changes: str) -> dict[str, Any]:
    form = {
        "code": plan_code,
        "kind": "per_seat",
        "interval": "month",
        "name_en": "Team",
        "name_fr": "Équipe",
        "description_en": "For teams",
        "description_fr": "Pour les équipes",
        "trial_days": "14",
        "overage_policy": "bill",
        "included_seats": "",
        "pack_seats": "",
        "pack_validity_months": "",
        "price_currency_0": "EUR",
        "price_category_0": "standard",
        "price_amount_0": "1 200,50",
        "price_overage_0": "",
        "price_currency_1": "",
        "price_category_1": "standard",
        "price_amount_1": "",
        "price_overage_1": "",
    }
    form.update(changes)
    return form


async def _plan_rows(code: str) -> list[dict[str, Any]]:
    async with transaction():
        return await fetch("SELECT id FROM plan WHERE code = $1", code)


async def _trail(staff: StaffFixture) -> list[tuple[str, str, str]]:
    async with transaction():
        rows = await fetch(
            "SELECT action, target_id, reason FROM staff_audit WHERE staff_user_id = $1"
            " ORDER BY occurred_at, id",
            staff.user.id,
        )
    return [(row["action"], row["target_id"], row["reason"]) for row in rows]


async def _plan(code: str, amount: int = 900) -> None:
    await create_plan(
        system_staff("test"),
        PlanFields(
            code=code,
            kind=PlanKind.PER_SEAT,
            names={"en": code},
            interval="month",
            overage_policy="warn",
            trial_days=0,
        ),
    )
    await set_price(system_staff("test"), code, "EUR", amount)


def test_prices_are_read_as_people_type_them() -> None:
    assert parse_price("1 200,50", "EUR") == 120050
    assert parse_price("1\u202f200,50", "EUR") == 120050
    assert parse_price("1200.50", "EUR") == 120050
    assert parse_price("1,200.50", "EUR") == 120050
    assert parse_price("0", "EUR") == 0
    assert parse_price("1200", "JPY") == 1200
    for wrong in ("-3", "abc", "", "1.234", "1,200", "12.5.5"):
        with pytest.raises(Invalid):
            parse_price(wrong, "EUR")


async def test_an_account_manager_creates_edits_retires_and_restores_a_plan(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    code = _code()
    created = await am_browser.post("/admin/plans/new", _form(code), page="/admin/plans/new")
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"/admin/plans/{code}"
    plan = await plan_by_code(code)
    assert (plan.kind, plan.trial_days, plan.names["fr"]) == ("per_seat", 14, "Équipe")

    listing = await am_browser.get("/admin/plans")
    assert listing.status_code == 200
    assert code in listing.text
    assert "€1,200.50" in listing.text

    edit_page = await am_browser.get(f"/admin/plans/{code}")
    assert edit_page.status_code == 200
    assert 'value="1200.50"' in edit_page.text
    edited = await am_browser.post(
        f"/admin/plans/{code}",
        _form(
            code,
            name_en="Team plus",
            price_amount_0="1300",
            price_currency_1="usd",
            price_amount_1="1500.00",
            reason=REASON,
        ),
        page=f"/admin/plans/{code}",
    )
    assert edited.status_code == 303, edited.text
    assert (await plan_by_code(code)).names["en"] == "Team plus"
    listing = await am_browser.get("/admin/plans")
    assert "€1,300.00" in listing.text
    assert "$1,500.00" in listing.text

    # a subscriber: retiring keeps it, the catalogue counts it
    await subscribe(tenant_a.owner_ctx, code, at=NOW, quantity=3)
    confirm = await am_browser.get(f"/admin/plans/{code}/retire")
    assert confirm.status_code == 200
    assert "Subscribers: 1. They keep it" in confirm.text
    no_reason = await am_browser.post(
        f"/admin/plans/{code}/retire", {"reason": ""}, page=f"/admin/plans/{code}/retire"
    )
    assert no_reason.status_code == 422
    assert "Give the reason" in no_reason.text
    assert (await plan_by_code(code)).retired_at is None
    retired = await am_browser.post(
        f"/admin/plans/{code}/retire",
        {"reason": "Replaced by the 2027 offer"},
        page=f"/admin/plans/{code}/retire",
    )
    assert retired.status_code == 303
    assert (await plan_by_code(code)).retired_at is not None
    assert await _plan_rows(code)  # retired, never deleted

    # retired: off the pricing page and out of self-serve
    pricing = await am_browser.get("/pricing")
    assert "Team plus" not in pricing.text
    with pytest.raises(Invalid):
        await subscribe(tenant_b.owner_ctx, code, at=NOW)

    restore_page = await am_browser.get(f"/admin/plans/{code}/restore")
    assert restore_page.status_code == 200
    assert 'name="reason"' in restore_page.text
    restored = await am_browser.post(
        f"/admin/plans/{code}/restore",
        {"reason": "The 2027 offer is postponed"},
        page=f"/admin/plans/{code}/restore",
    )
    assert restored.status_code == 303
    assert (await plan_by_code(code)).retired_at is None
    assert "Team plus" in (await am_browser.get("/pricing")).text

    trail = await _trail(account_manager)
    plan_id = str(plan.id)
    actions = [action for action, target, _ in trail if target == plan_id]
    # one transaction per save: the entries of one save share their time
    assert sorted(actions) == sorted(
        [
            "plan.created",
            "plan.price_set",
            "plan.edited",
            "plan.price_set",
            "plan.price_set",
            "plan.retired",
            "plan.restored",
        ]
    )
    assert ("plan.retired", plan_id, "Replaced by the 2027 offer") in trail
    assert ("plan.restored", plan_id, "The 2027 offer is postponed") in trail
    assert [reason for action, target, reason in trail if action == "plan.edited"] == [REASON]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price_amount_0": "-5"}, "A price cannot be negative."),
        ({"price_currency_0": "XYZ"}, "Unknown currency"),
        ({"price_amount_0": "douze"}, "Write a price such as"),
        ({"name_en": "", "name_fr": ""}, "A plan needs a name in English"),
        ({"trial_days": "abc"}, "A trial lasts 0 to 366 days."),
        ({"code": "Not A Code"}, "A plan code is 1 to 64"),
        ({"kind": "license"}, "A licence states how many seats it includes."),
        ({"kind": "seat_pack", "pack_seats": "10"}, "A seat pack states how many seats"),
        ({"price_amount_0": ""}, "Give the price in this currency"),
        ({"price_category_0": "vip"}, "Unknown price category."),
    ],
)
async def test_bad_input_is_refused_with_its_message_and_nothing_written(
    am_browser: Browser, changes: dict[str, str], message: str
) -> None:
    code = _code()
    form = _form(code, **changes)
    if "code" in changes:
        code = changes["code"]
    refused = await am_browser.post("/admin/plans/new", form, page="/admin/plans/new")
    assert refused.status_code == 422, refused.text
    assert message in refused.text
    # what was typed is still there
    if form["description_en"]:
        assert "For teams" in refused.text
    assert not await _plan_rows(code)


async def test_a_taken_code_is_refused_and_the_plan_left_as_it_was(am_browser: Browser) -> None:
    code = _code()
    await _plan(code, 900)
    refused = await am_browser.post(
        "/admin/plans/new", _form(code, price_amount_0="1"), page="/admin/plans/new"
    )
    assert refused.status_code == 409
    assert "A plan with this code already exists." in refused.text
    async with transaction():
        rows = await fetch(
            "SELECT unit_amount FROM plan_price pp JOIN plan p ON p.id = pp.plan_id"
            " WHERE p.code = $1",
            code,
        )
    assert [row["unit_amount"] for row in rows] == [900]


async def test_a_bad_price_on_edit_changes_nothing(am_browser: Browser) -> None:
    code = _code()
    await _plan(code, 900)
    refused = await am_browser.post(
        f"/admin/plans/{code}",
        _form(code, name_en="Renamed", price_amount_0="-1", reason=REASON),
        page=f"/admin/plans/{code}",
    )
    assert refused.status_code == 422
    assert "Renamed" in refused.text  # kept as typed
    plan = await plan_by_code(code)
    assert plan.names["en"] == code


async def test_support_reads_the_catalogue_but_writes_nothing(
    browser: Browser, support: StaffFixture
) -> None:
    code = _code()
    await _plan(code)
    await staff_login(browser, support)
    listing = await browser.get("/admin/plans")
    assert listing.status_code == 200
    assert code in listing.text
    assert "/admin/plans/new" not in listing.text
    assert (await browser.get("/admin/plans/new")).status_code == 403
    assert (await browser.get(f"/admin/plans/{code}")).status_code == 403
    for path, data in [
        ("/admin/plans/new", _form(_code())),
        (f"/admin/plans/{code}", _form(code, name_en="Changed")),
        (f"/admin/plans/{code}/retire", {"reason": "Support tries"}),
        (f"/admin/plans/{code}/restore", {}),
    ]:
        response = await browser.post(path, data, page="/admin/plans")
        assert response.status_code == 403, path
    plan = await plan_by_code(code)
    assert plan.retired_at is None
    assert plan.names["en"] == code


async def test_a_content_editor_is_refused(browser: Browser, content_editor: StaffFixture) -> None:
    code = _code()
    await _plan(code)
    await staff_login(browser, content_editor)
    assert (await browser.get("/admin/plans")).status_code == 403
    assert (await browser.get("/admin/plans/new")).status_code == 403
    denied = await browser.post("/admin/plans/new", _form(_code()), page="/admin/plans")
    assert denied.status_code == 403
    retire = await browser.post(f"/admin/plans/{code}/retire", {"reason": "no"}, page="/admin")
    assert retire.status_code == 403
    assert (await plan_by_code(code)).retired_at is None


async def test_a_tenant_owner_is_told_there_is_no_such_page(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    code = _code()
    await _plan(code)
    await browser.login(tenant_a.owner)
    assert (await browser.get("/admin/plans")).status_code == 404
    assert (await browser.get(f"/admin/plans/{code}")).status_code == 404
    response = await browser.post(
        f"/admin/plans/{code}/retire", {"reason": "mine now"}, page=f"/o/{tenant_a.slug}"
    )
    assert response.status_code == 404
    assert (await plan_by_code(code)).retired_at is None


async def test_an_unknown_plan_is_a_404(am_browser: Browser) -> None:
    assert (await am_browser.get("/admin/plans/no-such-plan")).status_code == 404
    assert (await am_browser.get("/admin/plans/no-such-plan/retire")).status_code == 404


async def test_a_licence_with_a_public_sector_price_and_its_kind_kept_on_edit(
    am_browser: Browser,
) -> None:
    code = _code()
    form = _form(
        code,
        kind="license",
        interval="year",
        included_seats="250",
        price_category_0="public",
        price_amount_0="9 000",
    )
    created = await am_browser.post("/admin/plans/new", form, page="/admin/plans/new")
    assert created.status_code == 303, created.text
    plan = await plan_by_code(code)
    assert (plan.kind, plan.interval, plan.included_seats) == ("license", "year", 250)
    async with transaction():
        [price] = await fetch(
            "SELECT category, unit_amount FROM plan_price WHERE plan_id = $1", plan.id
        )
    assert (price["category"], price["unit_amount"]) == ("public", 900000)
    # what subscribers bought does not change on edit, whatever the form says
    edited = await am_browser.post(
        f"/admin/plans/{code}",
        {**form, "kind": "per_seat", "interval": "month", "included_seats": "", "reason": REASON},
        page=f"/admin/plans/{code}",
    )
    assert edited.status_code == 303, edited.text
    plan = await plan_by_code(code)
    assert (plan.kind, plan.interval, plan.included_seats) == ("license", "year", 250)


async def test_the_code_of_the_new_plan_page_is_reserved(am_browser: Browser) -> None:
    refused = await am_browser.post("/admin/plans/new", _form("new"), page="/admin/plans/new")
    assert refused.status_code == 422
    assert "This code is reserved" in refused.text
    assert not await _plan_rows("new")


async def _prices_of(code: str) -> list[tuple[str, int]]:
    async with transaction():
        rows = await fetch(
            "SELECT currency, unit_amount FROM plan_price pp JOIN plan p ON p.id = pp.plan_id"
            " WHERE p.code = $1 ORDER BY currency",
            code,
        )
    return [(row["currency"], row["unit_amount"]) for row in rows]


def _confirmation(text: str) -> str:
    [token] = re.findall(r'name="confirm_prices" value="([^"]*)"', text)
    return html.unescape(token)


@pytest.mark.parametrize("reason", ["", "  ", "ok"])
async def test_an_edit_without_a_reason_is_refused_and_nothing_written(
    am_browser: Browser, account_manager: StaffFixture, reason: str
) -> None:
    code = _code()
    await _plan(code, 900)
    refused = await am_browser.post(
        f"/admin/plans/{code}",
        _form(code, name_en="Renamed", price_amount_0="12", reason=reason),
        page=f"/admin/plans/{code}",
    )
    assert refused.status_code == 422
    assert "Give the reason for this action." in refused.text
    assert "Renamed" in refused.text  # kept as typed
    assert (await plan_by_code(code)).names["en"] == code
    assert await _prices_of(code) == [("EUR", 900)]
    assert not [action for action, _, _ in await _trail(account_manager) if "plan" in action]


async def test_an_edit_records_its_reason_with_each_change(
    am_browser: Browser, account_manager: StaffFixture
) -> None:
    code = _code()
    await _plan(code, 900)
    page = await am_browser.get(f"/admin/plans/{code}")
    assert 'name="reason"' in page.text
    edited = await am_browser.post(
        f"/admin/plans/{code}",
        _form(code, name_en="Renamed", price_amount_0="12", reason=REASON),
        page=f"/admin/plans/{code}",
    )
    assert edited.status_code == 303, edited.text
    assert await _prices_of(code) == [("EUR", 1200)]  # no subscriber: nothing to confirm
    trail = [row for row in await _trail(account_manager) if row[0].startswith("plan.")]
    assert sorted(action for action, _, _ in trail) == ["plan.edited", "plan.price_set"]
    assert {reason for _, _, reason in trail} == {REASON}


async def test_a_price_change_for_subscribers_is_confirmed_first(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    code = _code()
    await _plan(code, 900)
    await subscribe(tenant_a.owner_ctx, code, at=NOW, quantity=3)
    path = f"/admin/plans/{code}"

    # the same prices: saved at once
    same = await am_browser.post(
        path, _form(code, name_en="Renamed", price_amount_0="9.00", reason=REASON), page=path
    )
    assert same.status_code == 303, same.text
    assert (await plan_by_code(code)).names["en"] == "Renamed"

    form = _form(code, price_amount_0="12", reason=REASON)
    asked = await am_browser.post(path, form, page=path)
    assert asked.status_code == 200
    # ngettext since 623621a (issue 14, defect 9): one subscriber is singular.
    assert "Confirm the new prices: the 1 subscriber of this plan pays them" in asked.text
    assert "€9.00 becomes €12.00" in asked.text
    assert 'value="12"' in asked.text  # the form as typed
    assert await _prices_of(code) == [("EUR", 900)]
    token = _confirmation(asked.text)

    # a confirmation of other prices than these asks again
    changed = await am_browser.post(
        path, {**form, "price_amount_0": "15", "confirm_prices": token}, page=path
    )
    assert changed.status_code == 200
    assert "€9.00 becomes €15.00" in changed.text
    assert await _prices_of(code) == [("EUR", 900)]

    # the reason is still required at the confirmation
    no_reason = await am_browser.post(
        path, {**form, "reason": "", "confirm_prices": token}, page=path
    )
    assert no_reason.status_code == 422
    assert "Give the reason for this action." in no_reason.text
    assert await _prices_of(code) == [("EUR", 900)]

    confirmed = await am_browser.post(path, {**form, "confirm_prices": token}, page=path)
    assert confirmed.status_code == 303, confirmed.text
    assert await _prices_of(code) == [("EUR", 1200)]
    price_set = [(a, r) for a, _, r in await _trail(account_manager) if a == "plan.price_set"]
    assert price_set[-1] == ("plan.price_set", REASON)


async def test_a_restore_without_a_reason_is_refused_and_the_plan_stays_retired(
    am_browser: Browser, account_manager: StaffFixture
) -> None:
    code = _code()
    await _plan(code, 900)
    retired = await am_browser.post(
        f"/admin/plans/{code}/retire", {"reason": "Old offer"}, page=f"/admin/plans/{code}/retire"
    )
    assert retired.status_code == 303
    for data in ({}, {"reason": ""}, {"reason": "no"}):
        refused = await am_browser.post(
            f"/admin/plans/{code}/restore", data, page=f"/admin/plans/{code}/restore"
        )
        assert refused.status_code == 422
        assert "Give the reason for this action." in refused.text
    assert (await plan_by_code(code)).retired_at is not None
    assert "plan.restored" not in [action for action, _, _ in await _trail(account_manager)]
    listing = await am_browser.get("/admin/plans")
    assert f'href="/admin/plans/{code}/restore"' in listing.text


BAD_CODES = ["ab%00c", "a" * 300, "ab%0Ac", "Not%20A%20Code"]


@pytest.mark.parametrize("bad", BAD_CODES)
async def test_a_code_no_plan_could_have_is_a_404_on_every_plan_route(
    am_browser: Browser, bad: str
) -> None:
    data = {**_form("x"), "reason": REASON, "confirm_prices": "x"}
    for method, path in [
        ("GET", f"/admin/plans/{bad}"),
        ("POST", f"/admin/plans/{bad}"),
        ("GET", f"/admin/plans/{bad}/retire"),
        ("POST", f"/admin/plans/{bad}/retire"),
        ("GET", f"/admin/plans/{bad}/restore"),
        ("POST", f"/admin/plans/{bad}/restore"),
    ]:
        if method == "GET":
            response = await am_browser.get(path)
        else:
            response = await am_browser.post(path, data, page="/admin/plans")
        assert response.status_code == 404, (method, path[:40], response.text[:300])
