"""The staff second factor (admin.access, tenants.staff): no staff page without it, codes good
once, recovery codes, the first set-up, and the idle timeout."""

from __future__ import annotations

import asyncio
import time
from uuid import UUID, uuid4

import httpx
import pyotp
import pytest
from litestar import Litestar

from core.settings import get_settings
from tenants.staff import confirm_enrolment, make_staff, verify_second_factor
from tests.admin.conftest import StaffFixture, make_staff_member, staff_login
from tests.api.conftest import Browser
from tests.conftest import TenantFixture, make_user


async def test_a_staff_session_without_the_second_factor_reaches_nothing(
    browser: Browser, account_manager: StaffFixture
) -> None:
    await browser.login(account_manager.user)
    response = await browser.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/second-factor?next=")


async def test_a_tenant_member_is_told_the_back_office_does_not_exist(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    assert (await browser.get("/admin/second-factor")).status_code == 404
    assert (await browser.get("/admin")).status_code == 404


async def test_a_wrong_code_is_refused_with_a_message_and_a_code_is_good_once(
    browser: Browser, account_manager: StaffFixture
) -> None:
    await browser.login(account_manager.user)
    wrong = await browser.post(
        "/admin/second-factor", {"code": "000000"}, page="/admin/second-factor"
    )
    assert wrong.status_code == 422
    assert "This code is not valid" in wrong.text
    code = account_manager.code_now()
    assert await verify_second_factor(account_manager.user.id, code)
    assert not await verify_second_factor(account_manager.user.id, code)  # replayed


async def test_a_recovery_code_works_once(account_manager: StaffFixture) -> None:
    code = account_manager.recovery_codes[0]
    assert await verify_second_factor(account_manager.user.id, code)
    assert not await verify_second_factor(account_manager.user.id, code)


async def test_the_second_factor_passed_opens_the_back_office(
    browser: Browser, account_manager: StaffFixture
) -> None:
    await staff_login(browser, account_manager)
    assert (await browser.get("/admin/second-factor")).status_code == 200


async def test_first_sign_in_sets_up_the_app_and_shows_recovery_codes(
    browser: Browser, db: str
) -> None:
    user = await make_user("New Staff")
    await make_staff(user.id, "support")
    await browser.login(user)
    first = await browser.get("/admin/second-factor")
    assert first.status_code == 303
    assert first.headers["location"] == "/admin/second-factor/setup"
    page = await browser.get("/admin/second-factor/setup")
    assert page.status_code == 200
    assert "<svg" in page.text
    secret = page.text.split('id="totp-secret">')[1].split("<")[0]
    done = await browser.post(
        "/admin/second-factor/setup",
        {"code": pyotp.TOTP(secret).now()},
        page="/admin/second-factor/setup",
    )
    assert done.status_code == 200
    assert done.text.count("<li><code>") == 10


async def test_an_idle_staff_session_asks_for_the_code_again(
    browser: Browser, account_manager: StaffFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await staff_login(browser, account_manager)
    idle = get_settings().staff_idle_minutes * 60
    later = time.time() + idle + 5
    monkeypatch.setattr(time, "time", lambda: later)
    response = await browser.get("/admin/second-factor/setup")
    assert response.status_code == 303  # set up already: to the code page
    response = await browser.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/second-factor")


async def test_enrolment_refuses_a_wrong_code(db: str) -> None:
    staff = await make_staff_member("support")
    with pytest.raises(Exception, match="already set up"):
        await confirm_enrolment(staff.user.id, pyotp.TOTP(staff.secret).now())


async def test_staff_land_in_the_back_office_and_others_on_their_organizations(
    browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    signed_in = await browser.login(account_manager.user)
    assert signed_in.headers["location"] == "/admin"
    orgs = await browser.get("/o/")
    assert orgs.status_code == 200
    assert 'href="/admin"' in orgs.text
    await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
    owner = await browser.login(tenant_a.owner)
    assert owner.headers["location"] == "/o/"
    assert 'href="/admin"' not in (await browser.get("/o/")).text


async def test_a_disabled_staff_member_lands_like_anyone(
    browser: Browser, superadmin: StaffFixture, db: str
) -> None:
    from tenants.staff import disable_staff

    gone = await make_staff_member("support", "Gone Staff")
    await disable_staff(superadmin.ctx, gone.user.id, "left the company")
    signed_in = await browser.login(gone.user)
    assert signed_in.headers["location"] == "/o/"
    assert (await browser.get("/admin")).status_code == 404


async def test_codes_sent_in_parallel_cannot_slip_under_the_limit(
    app: Litestar, account_manager: StaffFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from admin import access
    from tenants import staff as staff_service

    checked: list[str] = []
    real_verify = staff_service.verify_second_factor

    async def slow_verify(user_id: UUID, code: str) -> bool:
        checked.append(code)
        await asyncio.sleep(0.01)  # every request is past the limit check before any fails
        return await real_verify(user_id, code)

    monkeypatch.setattr(staff_service, "verify_second_factor", slow_verify)
    address = f"10.{uuid4().int % 250}.{uuid4().int % 250}.7"
    transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            them = Browser(client)
            await them.login(account_manager.user)
            await them.get("/admin/second-factor")
            token = them.csrf
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/admin/second-factor",
                        data={"_csrf_token": token, "code": f"{n:06d}"},
                    )
                    for n in range(30)
                )
            )
            assert len(checked) <= access.ATTEMPTS
            assert sum(a.status_code == 429 for a in answers) >= 30 - access.ATTEMPTS
            assert all(a.status_code in (422, 429) for a in answers)
            right = await them.post(
                "/admin/second-factor",
                {"code": account_manager.code_now()},
                page="/admin/second-factor",
            )
            assert right.status_code == 429
            assert "Too many wrong codes" in right.text
    finally:
        limiter = app.state.limiter
        await limiter.reset(f"staff-2fa:{account_manager.user.id}")
        await limiter.reset(f"staff-2fa-ip:{address}")


async def test_a_success_clears_the_members_count(
    browser: Browser, account_manager: StaffFixture, app: Litestar
) -> None:
    await browser.login(account_manager.user)
    for _ in range(2):
        wrong = await browser.post(
            "/admin/second-factor", {"code": "000000"}, page="/admin/second-factor"
        )
        assert wrong.status_code == 422
    await staff_login(browser, account_manager)
    assert await app.state.limiter.count(f"staff-2fa:{account_manager.user.id}") == 0
    await app.state.limiter.reset("staff-2fa-ip:127.0.0.1")


async def test_recovery_codes_have_64_bits_and_are_stored_keyed(
    account_manager: StaffFixture,
) -> None:
    import hashlib
    import re

    from core import database

    assert len(account_manager.recovery_codes) == 10
    for code in account_manager.recovery_codes:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}", code)
    async with database.global_transaction():
        [row] = await database.fetch(
            "SELECT recovery_codes FROM staff_member WHERE user_id = $1", account_manager.user.id
        )
    plain = {
        hashlib.sha256(c.replace("-", "").encode()).hexdigest()
        for c in account_manager.recovery_codes
    }
    assert len(row["recovery_codes"]) == 10
    assert not plain & set(row["recovery_codes"])
    # typed with capitals or without the dash, it still works
    assert await verify_second_factor(
        account_manager.user.id, account_manager.recovery_codes[2].replace("-", "").upper()
    )


async def test_digits_of_another_script_are_a_wrong_code_not_an_error(
    browser: Browser, account_manager: StaffFixture, app: Litestar, db: str
) -> None:
    arabic = "١٢٣٤٥٦"
    try:
        await browser.login(account_manager.user)
        code_page = await browser.post(
            "/admin/second-factor", {"code": arabic}, page="/admin/second-factor"
        )
        assert code_page.status_code == 422
        assert "This code is not valid" in code_page.text
        assert not await verify_second_factor(account_manager.user.id, "١٢٣٤-٥٦٧٨")
        await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
        new = await make_user("Fresh Staff")
        await make_staff(new.id, "support")
        await browser.login(new)
        assert (await browser.get("/admin/second-factor/setup")).status_code == 200
        setup = await browser.post(
            "/admin/second-factor/setup", {"code": arabic}, page="/admin/second-factor/setup"
        )
        assert setup.status_code == 422
        assert "This code is not valid" in setup.text
    finally:
        await app.state.limiter.reset("staff-2fa-ip:127.0.0.1")


async def test_a_content_editor_lands_on_the_content_pages_after_the_code(
    browser: Browser, content_editor: StaffFixture, account_manager: StaffFixture
) -> None:
    await browser.login(content_editor.user)
    done = await browser.post(
        "/admin/second-factor",
        {"code": content_editor.code_now(), "next": "/admin"},
        page="/admin/second-factor",
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/content"
    assert (await browser.get("/admin/content")).status_code == 200
    await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
    await browser.login(account_manager.user)
    asked = await browser.post(
        "/admin/second-factor",
        {"code": account_manager.code_now(), "next": "/admin/tenants"},
        page="/admin/second-factor",
    )
    assert asked.headers["location"] == "/admin/tenants"
