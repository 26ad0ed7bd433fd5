"""No input is a 500 in the back office either (issue 13 §2.4): a superadmin's pages are
crawled from the dashboard and every form field gets NUL, an overlong text and an
out-of-range value in turn (tests/api/test_bad_input_everywhere.py does the same for the
console, the API and SCIM; the client's hook fails any 5xx)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar

from tenants.permissions import StaffRole
from tests.admin.conftest import StaffFixture, make_staff_member, staff_login
from tests.api.conftest import Browser, browser_on
from tests.api.test_bad_input_everywhere import TEXT_VALUES, crawl_pages, fuzz_forms
from tests.conftest import TenantFixture, make_tenant

#: Forms the crawl must not send: signing out, the second factor (wrong codes count against
#: the account), impersonation (the session becomes a tenant's read-only view), a challenge
#: bank import (a file) and a calibration run (minutes of work, not input handling).
SKIPPED = re.compile(r"^/logout|second-factor|impersonat|/content/(import|calibration)")


@pytest.fixture(scope="module")
async def staff(db: str) -> StaffFixture:
    return await make_staff_member(StaffRole.SUPERADMIN, "Fuzz Superadmin")


@pytest.fixture(scope="module")
async def customer(db: str) -> TenantFixture:
    """A tenant for the tenant pages to show."""
    return await make_tenant("Customer")


@pytest.fixture(scope="module")
async def staff_browser(app: Litestar, staff: StaffFixture) -> AsyncIterator[Browser]:
    async with browser_on(app) as browser:
        await staff_login(browser, staff)
        yield browser


async def test_every_back_office_form_survives_bad_values(
    staff_browser: Browser, staff: StaffFixture, customer: TenantFixture
) -> None:
    starts = ["/admin", "/admin/tenants", f"/admin/tenants/{customer.id}", "/admin/content"]
    crawl = await crawl_pages(staff_browser, starts, ("/admin",), SKIPPED)
    assert len(crawl.pages) >= 15, sorted(crawl.pages)
    sent = await fuzz_forms(staff_browser, crawl.forms.values(), SKIPPED, str(staff.user.id))
    assert sent > 50
    # The filters of the lists, every one at once: NUL, a long text, a day in year 9999.
    for url in crawl.pages.values():
        for value in (TEXT_VALUES["nul"], TEXT_VALUES["overlong"], TEXT_VALUES["year-9999"]):
            names = dict.fromkeys(crawl.names | {"cursor", "page", "limit"}, value[:2_000])
            await staff_browser.client.get(url.split("?")[0], params=names)
