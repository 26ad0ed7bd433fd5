"""Staff management (admin.staff, tenants.staff): superadmins list, add, re-role, disable and
reset staff; the last superadmin stays; the staff trail; TOTP seeds follow a key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from uuid import UUID, uuid4

import httpx
import pytest
from litestar import Litestar

from core import database
from core.errors import Invalid
from core.secrets import Keyring, SecretUnreadable
from core.settings import get_settings
from tenants import staff as staff_service
from tenants.accounts import get_user
from tenants.staff import (
    change_staff_role,
    disable_staff,
    rotate_totp_keys,
    verify_second_factor,
)
from tests.admin.conftest import StaffFixture, make_staff_member, staff_login
from tests.api.conftest import Browser
from tests.api.running import asgi_transport
from tests.conftest import TenantFixture, make_user


async def _staff_rows(user_id: UUID) -> list[dict[str, object]]:
    async with database.global_transaction():
        return [
            dict(r)
            for r in await database.fetch(
                "SELECT role, disabled_at FROM staff_member WHERE user_id = $1", user_id
            )
        ]


async def _trail(action: str, target: UUID) -> list[dict[str, object]]:
    async with database.global_transaction():
        return [
            dict(r)
            for r in await database.fetch(
                "SELECT staff_user_id, staff_role, reason, details FROM staff_audit"
                " WHERE action = $1 AND target_id = $2",
                action,
                str(target),
            )
        ]


async def test_a_superadmin_lists_the_staff_with_their_second_factor(
    browser: Browser, superadmin: StaffFixture, support: StaffFixture
) -> None:
    await staff_login(browser, superadmin)
    page = await browser.get("/admin/staff")
    assert page.status_code == 200
    assert support.user.email in page.text
    assert "Recovery codes left" in page.text
    assert 'aria-current="page"' in page.text


async def test_only_superadmins_manage_staff_and_tenant_people_are_told_nothing(
    browser: Browser, account_manager: StaffFixture, support: StaffFixture, tenant_a: TenantFixture
) -> None:
    await staff_login(browser, account_manager)
    assert (await browser.get("/admin/staff")).status_code == 403
    refused = await browser.post(
        f"/admin/staff/{support.user.id}/disable",
        {"reason": "no access here", "confirm": "yes"},
        page="/admin",
    )
    assert refused.status_code == 403
    assert (await _staff_rows(support.user.id))[0]["disabled_at"] is None
    other = Browser(browser.client)
    await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
    await other.login(tenant_a.owner)
    assert (await other.get("/admin/staff")).status_code == 404
    assert (await other.get("/admin/trail")).status_code == 404


async def test_adding_a_new_person_makes_the_account_and_mails_a_link(
    browser: Browser, superadmin: StaffFixture
) -> None:
    await staff_login(browser, superadmin)
    email = f"new-staff-{uuid4().hex[:8]}@example.org"
    done = await browser.post(
        "/admin/staff", {"email": email, "name": "Nora New", "role": "support"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/staff"
    listed = await browser.get("/admin/staff")
    assert email in listed.text
    assert "is now on the staff" in listed.text
    async with database.global_transaction():
        [mail] = await database.fetch(
            "SELECT body_text FROM mail_message WHERE to_address = $1", email
        )
        [user] = await database.fetch("SELECT id FROM user_account WHERE email = $1", email)
    assert "/password/reset/" in mail["body_text"]
    assert "QR" in mail["body_text"]  # the QR code, in the account's language
    assert (await _staff_rows(user["id"]))[0]["role"] == "support"
    [entry] = await _trail("staff.created", user["id"])
    assert entry["staff_user_id"] == superadmin.user.id
    assert entry["staff_role"] == "superadmin"


async def test_adding_an_existing_account_promotes_it_without_mail(
    browser: Browser, superadmin: StaffFixture, tenant_a: TenantFixture
) -> None:
    await staff_login(browser, superadmin)
    done = await browser.post(
        "/admin/staff",
        {"email": tenant_a.member.email.upper(), "name": "ignored", "role": "content_editor"},
    )
    assert done.status_code == 303
    promoted = await get_user(tenant_a.member.id)
    assert promoted is not None
    assert promoted.staff_role == "content_editor"
    async with database.global_transaction():
        mails = await database.fetch(
            "SELECT 1 FROM mail_message WHERE to_address = $1 AND subject LIKE '%back-office%'",
            tenant_a.member.email,
        )
    assert not mails
    again = await browser.post(
        "/admin/staff", {"email": tenant_a.member.email, "name": "x", "role": "support"}
    )
    assert again.status_code == 409
    assert "already on the staff" in again.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-email", "name": "X", "role": "support"}, "email"),
        ({"email": "ok-{}@example.org", "name": "X", "role": "owner"}, "Choose a staff role."),
        ({"email": "ok-{}@example.org", "name": "", "role": "support"}, "name"),
    ],
)
async def test_bad_input_to_add_staff_is_shown_and_nothing_is_made(
    browser: Browser, superadmin: StaffFixture, form: dict[str, str], message: str
) -> None:
    await staff_login(browser, superadmin)
    email = form["email"].format(uuid4().hex[:8])
    response = await browser.post("/admin/staff", {**form, "email": email})
    assert response.status_code == 422
    assert 'class="field-error"' in response.text
    assert email in response.text  # what was typed stays
    async with database.global_transaction():
        assert not await database.fetch(
            "SELECT 1 FROM user_account WHERE lower(email) = lower($1)", email
        )


async def test_changing_a_role_needs_a_reason_and_a_confirmation(
    browser: Browser, superadmin: StaffFixture, support: StaffFixture
) -> None:
    await staff_login(browser, superadmin)
    path = f"/admin/staff/{support.user.id}/role"
    assert (await browser.get(path)).status_code == 200
    no_reason = await browser.post(path, {"role": "account_manager", "confirm": "yes"})
    assert no_reason.status_code == 422
    assert "Give the reason" in no_reason.text
    unconfirmed = await browser.post(path, {"role": "account_manager", "reason": "promotion"})
    assert unconfirmed.status_code == 422
    assert "Tick the box" in unconfirmed.text
    assert (await _staff_rows(support.user.id))[0]["role"] == "support"
    done = await browser.post(
        path, {"role": "account_manager", "reason": "promotion", "confirm": "yes"}
    )
    assert done.status_code == 303
    assert (await _staff_rows(support.user.id))[0]["role"] == "account_manager"
    [entry] = await _trail("staff.role_changed", support.user.id)
    assert entry["reason"] == "promotion"


async def test_a_disabled_staff_member_loses_access_at_once(
    browser: Browser, superadmin: StaffFixture, account_manager: StaffFixture, app: Litestar
) -> None:
    async with httpx.AsyncClient(
        transport=asgi_transport(app), base_url="http://127.0.0.1", follow_redirects=False
    ) as their_client:
        them = Browser(their_client)
        await staff_login(them, account_manager)
        assert (await them.get("/admin/trail")).status_code == 200
        await staff_login(browser, superadmin)
        path = f"/admin/staff/{account_manager.user.id}/disable"
        assert (await browser.get(path)).status_code == 200
        done = await browser.post(path, {"reason": "left the company", "confirm": "yes"})
        assert done.status_code == 303
        assert (await them.get("/admin/trail")).status_code == 404
    assert (await _staff_rows(account_manager.user.id))[0]["disabled_at"] is not None
    assert await staff_service.staff_member_of(account_manager.user.id) is None
    [entry] = await _trail("staff.disabled", account_manager.user.id)
    assert entry["reason"] == "left the company"


async def test_no_one_disables_themselves_or_the_last_superadmin(
    browser: Browser, superadmin: StaffFixture
) -> None:
    await staff_login(browser, superadmin)
    own = await browser.post(
        f"/admin/staff/{superadmin.user.id}/disable",
        {"reason": "testing myself", "confirm": "yes"},
        page=f"/admin/staff/{superadmin.user.id}/disable",
    )
    assert own.status_code == 422
    assert "your own" in own.text
    assert (await _staff_rows(superadmin.user.id))[0]["disabled_at"] is None


async def test_the_last_superadmin_keeps_the_role(db: str) -> None:
    only = await make_staff_member("superadmin", "Solo Super")
    async with database.global_transaction():
        others = await database.fetch(
            "SELECT user_id FROM staff_member WHERE role = 'superadmin' AND disabled_at IS NULL"
            " AND user_id <> $1",
            only.user.id,
        )
        # the suite shares its database: set the others aside for this test, then put them back
        await database.execute(
            "UPDATE staff_member SET role = 'support' WHERE user_id = ANY($1)",
            [r["user_id"] for r in others],
        )
    try:
        other = await make_staff_member("superadmin", "Second Super")
        await disable_staff(other.ctx, only.user.id, "rotation of duties")
        with pytest.raises(Invalid, match="at least one active superadmin"):
            await change_staff_role(other.ctx, other.user.id, "support", "stepping down now")
        with pytest.raises(Invalid, match="your own"):
            await disable_staff(other.ctx, other.user.id, "stepping down now")
    finally:
        async with database.global_transaction():
            await database.execute(
                "UPDATE staff_member SET role = 'superadmin' WHERE user_id = ANY($1)",
                [r["user_id"] for r in others],
            )


async def test_resetting_a_second_factor_makes_them_set_it_up_again(
    browser: Browser, superadmin: StaffFixture, support: StaffFixture
) -> None:
    await staff_login(browser, superadmin)
    path = f"/admin/staff/{support.user.id}/reset-second-factor"
    assert (await browser.get(path)).status_code == 200
    done = await browser.post(path, {"reason": "lost phone, called in", "confirm": "yes"})
    assert done.status_code == 303
    member = await staff_service.staff_member_of(support.user.id)
    assert member is not None
    assert not member.second_factor
    assert not await verify_second_factor(support.user.id, support.code_now())
    assert await _trail("staff.second_factor_reset", support.user.id)


async def test_a_staff_member_unknown_is_404(browser: Browser, superadmin: StaffFixture) -> None:
    await staff_login(browser, superadmin)
    assert (await browser.get(f"/admin/staff/{uuid4()}/role")).status_code == 404
    plain = await make_user("Not Staff")
    assert (await browser.get(f"/admin/staff/{plain.id}/disable")).status_code == 404


async def test_the_trail_lists_staff_actions_newest_first_and_filters_by_tenant(
    browser: Browser,
    account_manager: StaffFixture,
    support: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await staff_service.start_impersonation(account_manager.ctx, tenant_a.id, "ticket 4242 alpha")
    await staff_service.start_impersonation(account_manager.ctx, tenant_b.id, "ticket 4343 beta")
    await staff_login(browser, support)  # support reads the trail too
    page = await browser.get("/admin/trail")
    assert page.status_code == 200
    assert page.text.index("ticket 4343 beta") < page.text.index("ticket 4242 alpha")
    assert account_manager.user.email in page.text
    assert support.user.email in page.text  # their own set-up of the app, labelled too
    assert "Account manager" in page.text
    narrowed = await browser.get(f"/admin/trail?tenant={tenant_a.id}")
    assert "ticket 4242 alpha" in narrowed.text
    assert "ticket 4343 beta" not in narrowed.text
    assert "Alpha Org" in narrowed.text
    bad = await browser.get("/admin/trail?tenant=nope")
    assert bad.status_code == 422
    assert "organization id" in bad.text


async def test_the_content_editor_reads_no_trail(
    browser: Browser, content_editor: StaffFixture
) -> None:
    await staff_login(browser, content_editor)
    assert (await browser.get("/admin/trail")).status_code == 403


async def test_rotate_keys_reencrypts_staff_totp_seeds_under_the_current_key(
    support: StaffFixture, owner_url: str
) -> None:
    """A seed sealed under an older key is re-encrypted under the first key by
    `jalon sso rotate-keys`; the old key is no longer needed after it."""
    current = get_settings().sso_keys[0]
    old = base64.b64encode(os.urandom(32)).decode("ascii")
    context = f"staff-totp:{support.user.id}"
    async with database.global_transaction():
        await database.execute(
            "UPDATE staff_member SET totp_secret = $2 WHERE user_id = $1",
            support.user.id,
            Keyring.from_base64([old]).encrypt(support.secret, context),
        )
    with pytest.raises(SecretUnreadable):
        await verify_second_factor(support.user.id, support.code_now())

    result = await asyncio.to_thread(
        _jalon, owner_url, "sso", "rotate-keys", JALON_SSO_KEYS=f"{current},{old}"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["staff_totp"] >= 1
    async with database.global_transaction():
        [row] = await database.fetch(
            "SELECT totp_secret FROM staff_member WHERE user_id = $1", support.user.id
        )
    assert Keyring.from_base64([current]).decrypt(row["totp_secret"], context) == support.secret
    assert await verify_second_factor(support.user.id, support.code_now())
    assert await rotate_totp_keys() == 0  # nothing left under an old key


def _jalon(owner_url: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=owner_url, **extra_env)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_jalon_staff_create_makes_the_first_superadmin_only(
    owner_url: str, superadmin: StaffFixture
) -> None:
    email = f"first-{uuid4().hex[:8]}@example.org"
    refused = await asyncio.to_thread(
        _jalon, owner_url, "staff", "create", "--email", email, "--name", "First"
    )
    assert refused.returncode == 2
    assert "ask a superadmin to add staff in the back office" in refused.stderr
    assert "/admin/staff" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not await _staff_by_email(email)

    async with database.global_transaction():
        others = [
            r["user_id"]
            for r in await database.fetch(
                "SELECT user_id FROM staff_member WHERE role = 'superadmin' AND disabled_at IS NULL"
            )
        ]
        # the suite shares its database: no superadmin for this part, then put them back
        await database.execute(
            "UPDATE staff_member SET role = 'support' WHERE user_id = ANY($1)", others
        )
    try:
        first = await asyncio.to_thread(
            _jalon, owner_url, "staff", "create", "--email", email, "--name", "First"
        )
    finally:
        async with database.global_transaction():
            await database.execute(
                "UPDATE staff_member SET role = 'superadmin' WHERE user_id = ANY($1)", others
            )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["role"] == "superadmin"
    assert "/admin/second-factor/setup" in first.stderr
    assert await _staff_by_email(email) == ["superadmin"]

    forced_email = f"forced-{uuid4().hex[:8]}@example.org"
    forced = await asyncio.to_thread(
        _jalon,
        owner_url,
        "staff",
        "create",
        "--email",
        forced_email,
        "--name",
        "Glass",
        "--role",
        "support",
        "--force",
    )
    assert forced.returncode == 0, forced.stderr
    assert "WARNING" in forced.stderr
    assert await _staff_by_email(forced_email) == ["support"]


async def _staff_by_email(email: str) -> list[str]:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT s.role FROM staff_member s JOIN user_account u ON u.id = s.user_id"
            " WHERE u.email = $1",
            email,
        )
    return [r["role"] for r in rows]


async def test_an_account_whose_address_is_not_verified_is_not_promoted(
    browser: Browser, superadmin: StaffFixture
) -> None:
    # Someone signed up first with a future staff member's address: they chose the password.
    from tenants.accounts import create_user

    email = f"squatter-{uuid4().hex[:8]}@example.org"
    squatter = await create_user(email, "Squatter", "correct horse battery", "en", verified=False)
    await staff_login(browser, superadmin)
    refused = await browser.post("/admin/staff", {"email": email, "name": "X", "role": "support"})
    assert refused.status_code == 409
    assert "address is not verified yet" in refused.text
    assert not await _staff_rows(squatter.id)
    assert not await _trail("staff.created", squatter.id)


async def test_a_disabled_staff_member_who_comes_back_sets_up_a_new_second_factor(
    browser: Browser, superadmin: StaffFixture
) -> None:
    gone = await make_staff_member("support", "Back Again")
    await disable_staff(superadmin.ctx, gone.user.id, "left the company")
    await staff_login(browser, superadmin)
    done = await browser.post(
        "/admin/staff", {"email": gone.user.email, "name": "x", "role": "support"}
    )
    assert done.status_code == 303
    member = await staff_service.staff_member_of(gone.user.id)
    assert member is not None
    assert not member.second_factor
    assert member.recovery_codes_left == 0
    assert not await verify_second_factor(gone.user.id, gone.code_now())
    assert not await verify_second_factor(gone.user.id, gone.recovery_codes[1])
    # the operator's command brings them back the same way
    again = await make_staff_member("support", "Back Twice")
    await disable_staff(superadmin.ctx, again.user.id, "left again")
    await staff_service.make_staff(again.user.id, "support")
    member = await staff_service.staff_member_of(again.user.id)
    assert member is not None
    assert not member.second_factor
    assert await staff_service.begin_enrolment(again.user.id) != again.secret


async def test_a_reset_second_factor_ends_the_sessions_that_passed_the_old_one(
    browser: Browser, superadmin: StaffFixture, support: StaffFixture, app: Litestar
) -> None:
    async with httpx.AsyncClient(
        transport=asgi_transport(app), base_url="http://127.0.0.1", follow_redirects=False
    ) as their_client:
        them = Browser(their_client)
        await staff_login(them, support)
        assert (await them.get("/admin/tenants")).status_code == 200
        await staff_service.reset_second_factor(superadmin.ctx, support.user.id, "lost phone")
        after = await them.get("/admin/tenants")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/admin/second-factor")
