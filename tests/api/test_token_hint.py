"""The console's token list tells tokens apart (issue 14, defect 11): each shows the first
characters of its own secret part, not the organization's id that every token of the
organization starts with; a token issued before these were kept says so."""

from __future__ import annotations

import re
from uuid import uuid4

from core import database
from tenants.tokens import HINT_LENGTH, create_token
from tests.api.conftest import Browser
from tests.conftest import TenantFixture
from tests.db import as_tenant


def _shown(page: str) -> dict[str, str]:
    """{token name: what its row shows of it}."""
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return {
        name: re.sub(r"<[^>]+>", "", cell).strip()
        for name, cell in re.findall(r"<td>([^<]+)</td><td>(.*?)</td>", table, re.S)
    }


async def test_each_token_shows_the_start_of_its_own_secret(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    first = await create_token(tenant_a.owner_ctx, "HR system", ["org:members:read"], None)
    second = await create_token(tenant_a.owner_ctx, "Payroll", ["org:members:read"], None)
    theirs = await create_token(tenant_b.owner_ctx, "Elsewhere", ["org:members:read"], None)
    await browser.login(tenant_a.owner)
    page = (await browser.get(f"/o/{tenant_a.slug}/tokens")).text
    shown = _shown(page)
    for issued in (first, second):
        secret = issued.token.split("_", 2)[2]
        assert shown[issued.name] == f"jalon_…_{secret[:HINT_LENGTH]}…"
        assert secret[HINT_LENGTH : HINT_LENGTH + 8] not in page  # the rest stays secret
    assert shown["HR system"] != shown["Payroll"]
    assert theirs.name not in shown  # another organization's token is not listed
    assert "not recorded" not in page


async def test_a_token_issued_before_hints_were_kept_says_so(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    async with as_tenant(tenant_a.id):
        await database.execute(
            """INSERT INTO api_token (tenant_id, id, name, prefix, token_hash, scopes)
               VALUES ($1, $2, 'Old integration', $3, $4, ARRAY['org:members:read'])""",
            tenant_a.id,
            uuid4(),
            f"jalon_{tenant_a.id.hex[:8]}",
            b"\x00" * 32,
        )
    await browser.login(tenant_a.owner)
    page = (await browser.get(f"/o/{tenant_a.slug}/tokens")).text
    assert _shown(page)["Old integration"] == "not recorded"
    assert 'aria-describedby="tokens-no-hint"' in page
    assert "was not recorded: tell them apart by their name and dates." in page
