"""The API's documentation pages in Chromium, on a network with no internet access: Swagger UI
(`/schema`) and Redoc (`/schema/redoc`) draw the API's operations from files Jalon serves,
every request stays on 127.0.0.1 (any other is refused, as an offline network would), and the
Content-Security-Policy reports no violation."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, Route

from tests.browser.conftest import screenshot
from tests.browser.test_content_security_policy import WATCH_VIOLATIONS

pytestmark = pytest.mark.browser


class Offline:
    """Refuses every request that would leave 127.0.0.1, and keeps its URL; keeps the
    console's policy messages too."""

    def __init__(self) -> None:
        self.left: list[str] = []
        self.console: list[str] = []

    async def route(self, route: Route, request: Request) -> None:
        host = urlsplit(request.url).hostname
        if request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            await route.continue_()
        else:
            self.left.append(request.url)
            await route.abort("internetdisconnected")

    def keep(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)


async def _offline(page: Page) -> Offline:
    offline = Offline()
    await page.route("**/*", offline.route)
    page.on("console", offline.keep)
    await page.add_init_script(WATCH_VIOLATIONS)
    return offline


async def _violations(page: Page, offline: Offline) -> list[str]:
    seen: list[str] = await page.evaluate("window.__violations")
    return seen + offline.console


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_swagger_ui_lists_the_operations_offline_under_the_policy(
    page: Page, path: str
) -> None:
    offline = await _offline(page)
    await page.goto(path)
    operations = page.locator(".opblock-summary-path")
    await operations.first.wait_for()
    paths = await operations.all_inner_texts()
    assert any("/api/v1/campaigns" in text for text in paths)
    assert any("/api/v1/audit" in text for text in paths)
    # The operation opens: Swagger UI's own scripts and styles work under the policy.
    await page.locator(".opblock-summary", has_text="/api/v1/organization").first.click()
    await page.locator(".opblock-body").first.wait_for()
    assert offline.left == []
    assert await _violations(page, offline) == []
    await screenshot(page, "api-docs-swagger")


async def test_redoc_draws_the_reference_offline_under_the_policy(page: Page) -> None:
    offline = await _offline(page)
    await page.goto("/schema/redoc")
    heading = page.get_by_role("heading", name="Jalon API")
    await heading.first.wait_for()
    menu = page.locator("[role=menuitem], .menu-content li")
    assert await menu.count() > 3
    # Redoc's styles applied (its <style> elements carry the page's nonce): the menu is
    # a sidebar beside the reference, not a list above it.
    width = await page.locator(".menu-content").first.evaluate(
        "(menu) => menu.getBoundingClientRect().width"
    )
    assert 0 < width < 600
    assert offline.left == []
    assert await _violations(page, offline) == []
    await screenshot(page, "api-docs-redoc")
