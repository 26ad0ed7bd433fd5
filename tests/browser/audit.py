"""The accessibility audit of every page the browser tests visit: a few basics a screen-reader
or keyboard user trips on (our own checks, `BASICS`), then axe-core's WCAG 2.1 AA rules, with no
serious or critical violation allowed; the page is photographed in var/screenshots/ either way.

axe-core comes from the npm registry like the other test peers (tests/peers/axe, installed by
`make peers` from its lock file, which `make test` runs).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import screenshot

AXE = Path(__file__).resolve().parents[1] / "peers" / "axe" / "node_modules" / "axe-core"
#: The impacts that fail a page (axe's "moderate" and "minor" are reported, not failed).
BLOCKING = frozenset({"serious", "critical"})
#: WCAG 2.1 levels A and AA, what issue 14, RGAA 4 and EN 301 549 ask of public services.
#: (WCAG 2.2's target-size rule is not in them: axe flags breadcrumb links in a line of text,
#: which 2.5.8 itself excepts.)
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

# Runs in the page: what a screen-reader user or a keyboard user would trip on.
BASICS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('html has no lang');
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  if (!document.title.trim()) problems.push('empty title');
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (field.type === 'hidden' || field.type === 'submit') continue;
    const labelled = (field.id && document.querySelector(`label[for="${field.id}"]`))
      || field.closest('label') || field.getAttribute('aria-label')
      || field.getAttribute('aria-labelledby');
    if (!labelled) problems.push(`unlabelled ${field.tagName} ${field.name}`);
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push(`img without alt ${img.src}`);
  }
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) problems.push(`duplicate ids ${dup}`);
  for (const a of document.querySelectorAll('a, button')) {
    if (!(a.textContent.trim() || a.getAttribute('aria-label') || a.querySelector('img[alt]')))
      problems.push(`nameless ${a.tagName} ${a.outerHTML.slice(0, 60)}`);
  }
  if (!document.querySelector('a.skip-link[href="#main"]')) problems.push('no skip link');
  return problems;
}"""

_RUN = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
}"""


@cache
def axe_source() -> str:
    """axe.min.js, as `make peers` installed it (a failure under CI, a skip elsewhere)."""
    script = AXE / "axe.min.js"
    if not script.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs axe-core in tests/peers/axe (make peers installs it)")
        pytest.skip("axe-core is not installed (make peers installs it)")
    return script.read_text(encoding="utf-8")


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG A/AA violations on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Our pages' Content-Security-Policy refuses inline scripts, so page.add_script_tag
        # (an inline <script>) is blocked. Playwright's evaluate goes through the DevTools
        # protocol, which the page's CSP does not govern: axe is injected without weakening
        # the policy the journeys run under (no bypass_csp), so a page that needed an inline
        # script would still fail as it would for a person.
        await page.evaluate(axe_source() + "\n;0")
    found: list[dict[str, Any]] = await page.evaluate(_RUN, list(WCAG_TAGS))
    return [v for v in found if v["impact"] in BLOCKING]


async def audit(page: Page, name: str) -> None:
    """Photograph the page as `name`, then fail on a missing basic or on an axe-core serious
    or critical violation."""
    await screenshot(page, name)
    problems: list[Any] = await page.evaluate(BASICS)
    assert problems == [], f"{name}: {problems}"
    violations = await axe_violations(page)
    assert violations == [], f"{name}: axe-core found {violations}"
