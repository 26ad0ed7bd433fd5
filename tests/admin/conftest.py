"""Staff for the back-office tests: a real staff account per role, its second factor set up
with a real TOTP seed, and a browser signed in through the real password and TOTP pages.

A TOTP code is good once (its time step is remembered), so `code_now` gives the code of the
current step and the enrolment uses an earlier one: the first sign-in's code is always fresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp
import pytest

from tenants.accounts import UserAccount, get_user
from tenants.context import Actor, StaffContext
from tenants.permissions import StaffRole, staff_permissions_of
from tenants.staff import begin_enrolment, confirm_enrolment, make_staff
from tests.api.conftest import Browser, app, browser, client  # noqa: F401 - fixtures shared here
from tests.conftest import make_user


@dataclass(frozen=True)
class StaffFixture:
    """A staff member of one role, with their TOTP seed and recovery codes."""

    user: UserAccount
    role: str
    secret: str
    recovery_codes: tuple[str, ...]

    @property
    def ctx(self) -> StaffContext:
        """Their staff context, for calling services directly."""
        return StaffContext(
            actor=Actor(kind="staff", user_id=self.user.id, label=self.user.email),
            role=self.role,
            permissions=staff_permissions_of(self.role),
        )

    def code_now(self) -> str:
        return pyotp.TOTP(self.secret).now()


async def make_staff_member(role: StaffRole | str, name: str = "Staff Person") -> StaffFixture:
    """A new staff account of `role`, its second factor set up (with a code of two steps
    ago, so that the current one is still unused)."""
    user = await make_user(name)
    await make_staff(user.id, str(role))
    secret = await begin_enrolment(user.id)
    earlier = time.time() - 60
    codes = await confirm_enrolment(user.id, pyotp.TOTP(secret).at(earlier), now=earlier)
    refreshed = await get_user(user.id)
    assert refreshed is not None
    return StaffFixture(refreshed, str(role), secret, tuple(codes))


async def staff_login(web: Browser, staff: StaffFixture, code: str | None = None) -> None:
    """Sign `staff` in as a person would: password, then the TOTP code (or `code`)."""
    await web.login(staff.user)
    response = await web.post(
        "/admin/second-factor",
        {"code": code or staff.code_now(), "next": "/admin"},
        page="/admin/second-factor",
    )
    assert response.status_code == 303, response.text
    # staff who may not read tenants land on the content pages (the dashboard is not theirs)
    landing = "/admin/content" if staff.role == StaffRole.CONTENT_EDITOR else "/admin"
    assert response.headers["location"] == landing
    # The session got a new id, and its forms a new token (`web.csrf`): load the landing page.
    await web.get(landing)


@pytest.fixture
async def superadmin(db: str) -> StaffFixture:
    return await make_staff_member(StaffRole.SUPERADMIN, "Sam Superadmin")


@pytest.fixture
async def account_manager(db: str) -> StaffFixture:
    return await make_staff_member(StaffRole.ACCOUNT_MANAGER, "Alice Accounts")


@pytest.fixture
async def support(db: str) -> StaffFixture:
    return await make_staff_member(StaffRole.SUPPORT, "Sunil Support")


@pytest.fixture
async def content_editor(db: str) -> StaffFixture:
    return await make_staff_member(StaffRole.CONTENT_EDITOR, "Chloe Content")


@pytest.fixture
async def am_browser(
    browser: Browser,  # noqa: F811 - the shared fixture
    account_manager: StaffFixture,
) -> Browser:
    """A browser signed in as an account manager (second factor passed)."""
    await staff_login(browser, account_manager)
    return browser
