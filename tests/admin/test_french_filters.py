"""The back office's filters in French (issue 14, defect 9): "All" says what it lets through,
so French can agree it ("Tous les statuts", "Toutes les offres"), as the console's filters do;
a bare "Tous" beside "Offre" read wrong."""

from __future__ import annotations

import re
from dataclasses import replace

from tenants.accounts import update_profile
from tenants.permissions import StaffRole
from tests.admin.conftest import make_staff_member, staff_login
from tests.api.conftest import Browser


async def _french_staff(browser: Browser, role: StaffRole) -> Browser:
    staff = await make_staff_member(role, "Françoise Back-Office")
    french = await update_profile(staff.user, staff.user.name, "fr")
    await staff_login(browser, replace(staff, user=french))
    return browser


def _first_options(page: str) -> dict[str, str]:
    """Each select's name and the text of its first option (the one that filters nothing)."""
    return {
        name: first
        for name, first in re.findall(
            r'<select id="f-(\w+)" name="\w+"[^>]*>\s*<option value=""[^>]*>([^<]*)</option>', page
        )
    }


async def test_the_tenants_list_says_all_of_what_in_french(browser: Browser) -> None:
    staff = await _french_staff(browser, StaffRole.ACCOUNT_MANAGER)
    page = await staff.get("/admin/tenants")
    assert page.status_code == 200
    assert _first_options(page.text) == {
        "kind": "Tous les types",
        "status": "Tous les statuts",
        "plan": "Toutes les offres",
    }
    assert ">Tous<" not in page.text


async def test_the_content_filters_say_all_of_what_in_french(browser: Browser) -> None:
    staff = await _french_staff(browser, StaffRole.CONTENT_EDITOR)
    page = await staff.get("/admin/content/challenges")
    assert page.status_code == 200
    assert _first_options(page.text) == {
        "competence": "Toutes les compétences",
        "status": "Tous les statuts",
        "locale": "Toutes les langues",
        "type": "Tous les types",
    }
    reports = await staff.get("/admin/content/reports")
    assert reports.status_code == 200
    assert re.search(r'aria-current="page"\s*>Tous les statuts</a>', reports.text)
    assert ">Tous<" not in page.text + reports.text
