"""API token scopes read as what they allow ("Read campaigns"), in the person's language, in
the token form and in the list; the scope's code stays beside it for those who script."""

from __future__ import annotations

import html
import re

from tenants.members import add_member
from tenants.permissions import TOKEN_SCOPES
from tests.api.conftest import Browser, issue_token
from tests.conftest import TenantFixture, make_user


async def test_every_scope_has_a_human_label_in_the_form_and_the_list(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await issue_token(tenant_a.owner_ctx, "org:campaigns:read", "org:results:read")
    await browser.login(tenant_a.owner)
    shown = html.unescape((await browser.get(f"/o/{tenant_a.slug}/tokens")).text)
    labels = dict(
        (code, label.strip())
        for label, code in re.findall(
            r'<label for="scope-\d+">([^<]*)<code class="hint">([^<]+)</code>', shown
        )
    )
    assert set(labels) == {scope.value for scope in TOKEN_SCOPES}
    assert all(label and label != code for code, label in labels.items())
    assert labels["org:campaigns:read"] == "Read campaigns"
    assert '<span title="org:campaigns:read">Read campaigns</span>' in shown
    assert '<span title="org:results:read">Read shared results</span>' in shown


async def test_the_scope_labels_are_translated(browser: Browser, tenant_a: TenantFixture) -> None:
    french = await make_user("Fanny Admin", locale="fr")
    await add_member(tenant_a.owner_ctx, french, "admin")
    await browser.login(french)
    shown = html.unescape((await browser.get(f"/o/{tenant_a.slug}/tokens")).text)
    assert "Lire les campagnes" in shown
    assert "Lire le journal d’audit" in shown
