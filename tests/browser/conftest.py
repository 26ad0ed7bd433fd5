"""A real HTTP server on 127.0.0.1 and headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from api.app import create_app
from core.settings import Settings
from tenants.permissions import StaffRole
from tests.admin.conftest import (  # noqa: F401 - the staff fixtures, shared here
    StaffFixture,
    account_manager,
    content_editor,
    superadmin,
    support,
)
from tests.api.conftest import PASSWORD
from tests.api.running import running

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _chromium() -> str:
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs chromium (make test installs it)")
        pytest.skip("chromium is not installed (make system installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
async def browser_app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    async with running(create_app(settings)) as application:
        yield application


@pytest.fixture(scope="session")
async def live_server(browser_app: Litestar) -> AsyncIterator[str]:
    """uvicorn serving the test application on 127.0.0.1, for the session only."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            browser_app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event to wait on  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        await browser.close()


async def _context(chromium: Browser, live_server: str, locale: str) -> BrowserContext:
    return await chromium.new_context(
        base_url=live_server, locale=locale, viewport={"width": 1280, "height": 860}
    )


@pytest.fixture
async def page(chromium: Browser, live_server: str) -> AsyncIterator[Page]:
    context = await _context(chromium, live_server, "en-GB")
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
async def page_fr(chromium: Browser, live_server: str) -> AsyncIterator[Page]:
    context = await _context(chromium, live_server, "fr-FR")
    page = await context.new_page()
    yield page
    await context.close()


async def screenshot(page: Page, name: str) -> None:
    """Keep a full-page picture in var/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def staff_sign_in(page: Page, staff: StaffFixture) -> None:
    """Sign a staff member in as they would: email, password, then their app's TOTP code;
    the page ends on the back office's dashboard (the content pages for content editors, who
    may not read tenants)."""
    await page.goto("/login?next=/admin")
    await page.locator("#f-email").fill(staff.user.email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-code").fill(staff.code_now())
    await page.locator("form[action='/admin/second-factor'] button[type=submit]").click()
    landing = "/admin/content" if staff.role == StaffRole.CONTENT_EDITOR else "/admin"
    await page.wait_for_url(f"**{landing}")
