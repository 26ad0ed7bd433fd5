"""The axe-core audit itself: it runs under our Content-Security-Policy and it can fail."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.browser.audit import audit, axe_violations

pytestmark = pytest.mark.browser


async def test_axe_runs_on_a_page_under_our_policy_and_finds_nothing_serious(page: Page) -> None:
    response = await page.goto("/login")
    assert response is not None
    assert "'unsafe-inline'" not in (response.headers.get("content-security-policy") or "x")
    assert await axe_violations(page) == []
    assert await page.evaluate("typeof window.axe") == "object"  # it did run


async def test_axe_fails_a_page_with_a_serious_violation(page: Page) -> None:
    await page.goto("/login")
    # an image without alternative text, and a field without a name: both axe-critical
    await page.evaluate(
        """() => {
        const img = document.createElement('img'); img.src = '/static/none.png';
        const field = document.createElement('input'); field.type = 'text';
        document.querySelector('main').append(img, field);
    }"""
    )
    found = {v["id"] for v in await axe_violations(page)}
    assert {"image-alt", "label"} <= found
    with pytest.raises(AssertionError, match="img without alt"):
        await audit(page, "axe-audit-fails")
