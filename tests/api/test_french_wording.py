"""French wording fixed in the catalogue (issue 14, defect 9): a verb button and a noun column
no longer share the msgid "Count", "Token begins" is not "Jetons", the one-day chart's note is
translated; every language has these."""

from __future__ import annotations

import pytest

from core.i18n import translate
from tenants.accounts import update_profile
from tests.api.conftest import Browser
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture


async def test_the_invitation_page_counts_the_learners_with_a_verb(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, name="Bases")
    await update_profile(tenant_a.owner, tenant_a.owner.name, "fr")
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/invite")
    assert page.status_code == 200
    assert '<button type="submit" class="secondary">Compter les apprenants</button>' in page.text


@pytest.mark.parametrize(
    ("locale", "count", "count_the_learners", "token_begins"),
    [
        ("fr", "Nombre", "Compter les apprenants", "Début du jeton"),
        ("nl", "Aantal", "De lerenden tellen", "Begin van het token"),
        ("de", "Anzahl", "Die Lernenden zählen", "Anfang des Tokens"),
    ],
)
def test_a_column_and_a_button_have_their_own_words(
    locale: str, count: str, count_the_learners: str, token_begins: str
) -> None:
    assert translate(locale, "Count") == count  # the content import's column: a noun
    assert translate(locale, "Count the learners") == count_the_learners  # a button: a verb
    assert translate(locale, "Token begins") == token_begins
    one_day = (
        "One day of activity so far: each figure is a dot, and the lines will join the days "
        "from the second day on."
    )
    assert translate(locale, one_day) not in ("", one_day)
