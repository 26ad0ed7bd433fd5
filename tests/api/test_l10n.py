"""Dates, times, plurals and French grammar as people read them (issue 14, defects 5, 8, 9):
day-month-year English, "3 déc. 2026" French, the organization's zone named, readable audit
details, "d’Atelier", and no count-bearing string without ngettext."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from core import database
from core.i18n import translate
from core.l10n import format_day, format_moment, plural
from core.l10n_elision import starts_with_vowel_sound
from tenants.members import add_member
from tests.api.conftest import Browser
from tests.conftest import make_tenant, make_user
from tests.db import as_tenant

ROOT = Path(__file__).resolve().parents[2]
MOMENT = datetime(2026, 12, 3, 13, 5, tzinfo=UTC)

# --- the helpers ---------------------------------------------------------------------------


def test_english_is_day_month_year_and_french_abbreviates_the_month() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert format_moment(MOMENT, "en", paris) == "3 Dec 2026, 14:05 (Europe/Paris)"
    assert format_moment(MOMENT, "fr", paris) == "3 déc. 2026, 14:05 (Europe/Paris)"
    assert format_day(MOMENT.date(), "en", width="short") == "03/12/2026"
    # a moment's day is the day in the zone, not in UTC
    late = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    assert format_day(late, "fr", ZoneInfo("Europe/Helsinki")) == "4 déc. 2026"


def test_french_plurals_follow_the_count() -> None:
    one = "{count} learner in the organization."
    many = "{count} learners in the organization."
    assert plural("fr", one, many, 1) == "1 apprenant dans l’organisation."
    assert plural("fr", one, many, 0) == "0 apprenant dans l’organisation."
    assert plural("fr", one, many, 2) == "2 apprenants dans l’organisation."
    assert plural("en", one, many, 1) == "1 learner in the organization."
    assert plural("en", one, many, 3) == "3 learners in the organization."


def test_french_elides_de_and_que_before_a_vowel_sound() -> None:
    assert translate("fr", "A campaign of {organization}", organization="Atelier") == (
        "Une campagne d’Atelier"
    )
    assert translate("fr", "A campaign of {organization}", organization="Mairie") == (
        "Une campagne de Mairie"
    )
    assert translate("fr", "Signed in as {name}.", name="administrateur") == (
        "Connecté en tant qu’administrateur."
    )
    assert translate("en", "A campaign of {organization}", organization="Atelier") == (
        "A campaign of Atelier"
    )
    assert starts_with_vowel_sound("Hôpital de Lyon")
    assert not starts_with_vowel_sound("Hauts-de-France")
    assert not starts_with_vowel_sound("8 ateliers")


# --- no count without ngettext -------------------------------------------------------------

#: A placeholder that carries a count, or a "(s)" standing in for a plural.
COUNT_BEARING = re.compile(r"\{(count|n|\w+_count)\}|%\((count|n)\)s|\(s\)")
#: "Label: {count}" needs no agreement, nor does a position ("Step 2 of {count}").
NO_AGREEMENT = re.compile(r": \{count\}|Step \{number\} of \{count\}")
TEMPLATE_CALL = re.compile(r"""(?<![\w.])_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
#: Calls whose string argument is a msgid (babel.cfg's keywords).
MSGID_CALLS = frozenset(
    {"_", "N_", "gettext", "translate", "flash", "UserError", "Invalid", "NotFound"}
    | {"Forbidden", "Conflict", "Gone", "TooManyRequests", "Unauthenticated", "LoginRequired"}
)


def _count_bearing(msgid: str) -> bool:
    return bool(COUNT_BEARING.search(msgid)) and not NO_AGREEMENT.search(msgid)


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _sources(pattern: str) -> list[Path]:
    skip = {".venv", "tests", "var", "bench", "loadtests", "scripts", "docs"}
    return [p for p in ROOT.glob(pattern) if p.relative_to(ROOT).parts[0] not in skip]


def test_every_count_goes_through_ngettext() -> None:
    found = []
    for path in _sources("*/**/templates/**/*.html"):
        for match in TEMPLATE_CALL.finditer(path.read_text(encoding="utf-8")):
            if _count_bearing(match.group(1)):
                found.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    for path in _sources("*/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _call_name(node) in MSGID_CALLS:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    text = arg.value if isinstance(arg, ast.Constant) else None
                    if isinstance(text, str) and _count_bearing(text):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
            # stored messages ({"message": …, "params": …}) are msgids too
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "message"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                        and _count_bearing(value.value)
                    ):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {value.value!r}")
    assert not found, "use ngettext(singular, plural, count) for:\n" + "\n".join(found)


def test_the_scan_finds_a_count_without_ngettext() -> None:
    assert _count_bearing("{count} learners in the organization.")
    assert _count_bearing("0 answered challenge(s)")
    assert not _count_bearing("Subscribers: {count}.")


# --- pages ---------------------------------------------------------------------------------


async def _seed(tenant_id: UUID, zone: str) -> None:
    async with as_tenant(tenant_id):
        await database.execute(
            "UPDATE organization SET timezone = $2 WHERE id = $1", tenant_id, zone
        )
        await database.execute(
            "INSERT INTO audit_event (tenant_id, id, occurred_at, actor_kind, actor_label, "
            "action, details) VALUES ($1, $2, $3, 'user', 'seed', 'organization.updated', $4)",
            tenant_id,
            uuid4(),
            MOMENT,
            json.dumps(
                {
                    "changes": {
                        "logo": {"from": None, "to": "uploaded"},
                        "name": {"from": "Old", "to": "New"},
                    }
                }
            ),
        )


async def test_the_audit_log_reads_as_text_in_the_organizations_zone(browser: Browser) -> None:
    helsinki, lisbon = await make_tenant("Helsinki"), await make_tenant("Lisbon")
    await _seed(helsinki.id, "Europe/Helsinki")
    await _seed(lisbon.id, "Europe/Lisbon")
    await browser.login(helsinki.owner)
    page = await browser.get(f"/o/{helsinki.slug}/audit")
    assert page.status_code == 200
    assert "3 Dec 2026, 15:05 (Europe/Helsinki)" in page.text
    assert "Logo: none → uploaded" in page.text
    assert "Name: Old → New" in page.text
    assert "{&#39;" not in page.text
    assert "None" not in page.text
    # the other organization's event, at 13:05 in Lisbon, is not here
    assert "(Europe/Lisbon)" not in page.text

    french = await make_user("Françoise Admin", locale="fr")
    await add_member(helsinki.owner_ctx, french, "admin")
    await browser.login(french)
    page = await browser.get(f"/o/{helsinki.slug}/audit")
    assert "3 déc. 2026, 15:05 (Europe/Helsinki)" in page.text
    assert "Logo\u00a0: aucun → téléversé" in page.text


async def test_my_results_shows_each_organizations_zone(browser: Browser) -> None:
    tenant = await make_tenant("Zoned")
    await _seed(tenant.id, "America/Cayenne")
    await browser.login(tenant.owner)
    page = await browser.get(f"/o/{tenant.slug}/")
    assert page.status_code == 200
    assert "(America/Cayenne)" in page.text
    assert "(UTC)" not in page.text
