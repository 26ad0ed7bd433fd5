"""The tenant console over HTTP: dashboard, members, settings, audit log, API tokens.

Every state change is checked to record exactly one audit event, and every refusal to write
nothing at all.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import asyncpg
import httpx
import pytest
from litestar import Litestar

from core import database
from tenants.context import Actor
from tenants.members import add_member
from tenants.organizations import LOGO_MAX_BYTES, OrganizationFields, create_organization
from tests.api.conftest import Browser, audit_actions, bearer, browser_on, issue_token
from tests.conftest import TenantFixture, make_tenant, make_user
from tests.db import as_tenant

PNG = b"\x89PNG\r\n\x1a\n"
TOO_BIG = f"The logo must weigh {LOGO_MAX_BYTES // 1000} KB at most."


@pytest.fixture(scope="module")
async def shared(db: str) -> TenantFixture:
    """A tenant for the tests that are refused: they check that nothing is written to it."""
    return await make_tenant("Shared")


@pytest.fixture(scope="module")
async def owner(app: Litestar, shared: TenantFixture) -> AsyncIterator[Browser]:
    """The shared tenant's owner, signed in once for the module."""
    async with browser_on(app) as browser:
        await browser.login(shared.owner)
        yield browser


@pytest.fixture(scope="module")
async def member(app: Litestar, shared: TenantFixture) -> AsyncIterator[Browser]:
    """The shared tenant's plain member, signed in once for the module."""
    async with browser_on(app) as browser:
        await browser.login(shared.member)
        yield browser


def png(size: int) -> bytes:
    """A file of `size` bytes that starts like a PNG (what the logo check reads)."""
    return PNG + b"\0" * (size - len(PNG))


async def _organization(tenant: TenantFixture) -> dict[str, Any]:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT name, default_locale, brand_colour, logo_data_url FROM organization "
            "WHERE id = $1",
            tenant.id,
        )
    return rows[0]


async def _roles(tenant: TenantFixture) -> dict[str, str]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT u.email, m.role FROM membership m JOIN user_account u ON u.id = m.user_id "
            "WHERE m.tenant_id = $1",
            tenant.id,
        )
    return {row["email"]: row["role"] for row in rows}


async def _membership_id(tenant: TenantFixture, user_id: Any) -> str:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2", tenant.id, user_id
        )
    return str(rows[0]["id"])


async def _add(tenant: TenantFixture, role: str, locale: str = "en") -> Any:
    """A new person with `role` in `tenant`."""
    person = await make_user(f"{role.title()} Person", locale)
    await add_member(tenant.owner_ctx, person, role)
    return person


# --- access ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/", "/members", "/settings", "/audit", "/tokens"])
async def test_signed_out_visitors_are_sent_to_sign_in_and_back(
    browser: Browser, shared: TenantFixture, page: str
) -> None:
    path = f"/o/{shared.slug}{page}"
    response = await browser.get(path + "?action=x")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    # The same page (Litestar matches paths with or without their final slash).
    assert parse_qs(location.query) == {"next": [path.rstrip("/") + "?action=x"]}


async def test_signed_out_form_posts_are_sent_to_sign_in_and_write_nothing(
    browser: Browser, shared: TenantFixture
) -> None:
    before = await audit_actions(shared.id)
    response = await browser.post(
        f"/o/{shared.slug}/members/invite", {"email": "x@example.org", "role": "member"}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert await audit_actions(shared.id) == before


@pytest.mark.parametrize("page", ["/audit", "/tokens"])
async def test_members_without_the_permission_get_403_with_a_message(
    member: Browser, shared: TenantFixture, page: str
) -> None:
    response = await member.get(f"/o/{shared.slug}{page}")
    assert response.status_code == 403
    assert "You do not have permission to do this." in response.text


async def test_the_403_is_in_the_members_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await _add(tenant_a, "member", locale="fr")
    await browser.login(person)
    response = await browser.get(f"/o/{tenant_a.slug}/tokens")
    assert response.status_code == 403
    assert "Vous n’avez pas l’autorisation d’effectuer cette action." in response.text


# --- dashboard -------------------------------------------------------------------------


async def test_dashboard_counts_members_and_invitations_and_shows_recent_activity(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    await browser.post(
        f"/o/{tenant_a.slug}/members/invite",
        {"email": "pending@example.org", "role": "member"},
        page=f"/o/{tenant_a.slug}/members",
    )
    page = await browser.get(f"/o/{tenant_a.slug}/")
    assert page.status_code == 200
    assert tenant_a.owner_ctx.tenant.name in page.text
    stats = dict(
        (label, value)
        for value, label in re.findall(
            r'<span class="value">(\d+)</span><span class="label">([^<]+)</span>', page.text
        )
    )
    # owner and member; one invitation
    assert (stats["members"], stats["pending invitation"]) == ("2", "1")
    assert "Member invited" in page.text  # recent activity, for those who may read the log


async def test_dashboard_hides_the_audit_log_from_members(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    page = await browser.get(f"/o/{tenant_a.slug}/")
    assert page.status_code == 200
    assert "member.added" not in page.text
    assert f"/o/{tenant_a.slug}/audit" not in page.text


# --- members ---------------------------------------------------------------------------


async def test_the_members_page_lists_everyone_owners_first_then_by_name(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    # Joined after the tenant's member, yet listed by role, then name.
    for name, role in [("Zoe Admin", "admin"), ("Abel Admin", "admin"), ("Aaron Member", "member")]:
        await add_member(tenant_a.owner_ctx, await make_user(name), role)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/members")
    assert page.status_code == 200
    names = re.findall(r"<tr>\s*<td>([^<]+?)(?: <span|</td>)", page.text)
    assert names == ["Alpha Owner", "Abel Admin", "Zoe Admin", "Aaron Member", "Alpha Member"]


async def test_inviting_records_one_event_and_mails_a_link(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/invite",
        {"email": "  Nadia.Invitee@Example.org ", "role": "admin"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert await audit_actions(tenant_a.id) == [*before, "member.invited"]
    page = await browser.get(response.headers["location"])
    assert "Invitation sent to Nadia.Invitee@Example.org." in page.text
    assert "Nadia.Invitee@Example.org" in page.text  # listed as pending
    async with database.global_transaction():
        mails = await database.fetch(
            "SELECT body_text FROM mail_message WHERE to_address = $1",
            "Nadia.Invitee@Example.org",
        )
    assert len(mails) == 1
    assert f"/invitations/{tenant_a.slug}/" in mails[0]["body_text"]


async def test_changing_a_role_records_one_event_with_the_change(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/{membership}/role",
        {"role": "admin"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert (await _roles(tenant_a))[tenant_a.member.email] == "admin"
    assert await audit_actions(tenant_a.id) == [*before, "member.role_changed"]
    async with as_tenant(tenant_a.id):
        details = await database.fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = "
            "'member.role_changed'",
            tenant_a.id,
        )
    assert '"from": "member"' in details[0]["details"]
    assert '"to": "admin"' in details[0]["details"]


async def test_giving_the_same_role_again_changes_and_records_nothing(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/{membership}/role",
        {"role": "member"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert await audit_actions(tenant_a.id) == before


async def test_an_unknown_role_is_refused(owner: Browser, shared: TenantFixture) -> None:
    membership = await _membership_id(shared, shared.member.id)
    before = await audit_actions(shared.id)
    response = await owner.post(
        f"/o/{shared.slug}/members/{membership}/role",
        {"role": "superadmin"},
        page=f"/o/{shared.slug}/members",
    )
    assert response.status_code == 422
    assert "Choose one of the offered options." in response.text
    assert (await _roles(shared))[shared.member.email] == "member"
    assert await audit_actions(shared.id) == before


async def test_removing_a_member_records_one_event(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/{membership}/remove",
        {"confirm": "yes"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert tenant_a.member.email not in await _roles(tenant_a)
    assert await audit_actions(tenant_a.id) == [*before, "member.removed"]
    page = await browser.get(response.headers["location"])
    assert "The member has been removed." in page.text


async def test_a_member_may_leave_and_loses_access(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/{membership.upper()}/remove",
        {"confirm": "yes"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/o/"
    assert await audit_actions(tenant_a.id) == [*before, "member.left"]
    assert (await browser.get(f"/o/{tenant_a.slug}/")).status_code == 404


async def test_a_member_cannot_remove_someone_else(member: Browser, shared: TenantFixture) -> None:
    owner_membership = await _membership_id(shared, shared.owner.id)
    before = await audit_actions(shared.id)
    response = await member.post(
        f"/o/{shared.slug}/members/{owner_membership}/remove",
        {"confirm": "yes"},
        page=f"/o/{shared.slug}/members",
    )
    assert response.status_code == 403
    assert "You do not have permission to do this." in response.text
    assert shared.owner.email in await _roles(shared)
    assert await audit_actions(shared.id) == before


async def test_the_last_owner_can_neither_leave_nor_be_demoted(
    owner: Browser, shared: TenantFixture
) -> None:
    own = await _membership_id(shared, shared.owner.id)
    before = await audit_actions(shared.id)
    leave = await owner.post(
        f"/o/{shared.slug}/members/{own}/remove",
        {"confirm": "yes"},
        page=f"/o/{shared.slug}/members",
    )
    demote = await owner.post(
        f"/o/{shared.slug}/members/{own}/role",
        {"role": "admin"},
        page=f"/o/{shared.slug}/members",
    )
    for response in (leave, demote):
        assert response.status_code == 409
        # At the top of the page: it is about a member of the list, not the invitation form.
        assert (
            '<div class="notice error" role="alert">An organization needs at least one owner: '
            "name another owner first.</div>"
        ) in response.text
    assert (await _roles(shared))[shared.owner.email] == "owner"
    assert await audit_actions(shared.id) == before


async def test_with_a_second_owner_an_owner_may_step_down(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await _add(tenant_a, "owner")
    await browser.login(tenant_a.owner)
    own = await _membership_id(tenant_a, tenant_a.owner.id)
    response = await browser.post(
        f"/o/{tenant_a.slug}/members/{own}/role",
        {"role": "admin"},
        page=f"/o/{tenant_a.slug}/members",
    )
    assert response.status_code == 303
    assert (await _roles(tenant_a))[tenant_a.owner.email] == "admin"


async def test_an_admin_cannot_touch_owners(browser: Browser, tenant_a: TenantFixture) -> None:
    admin = await _add(tenant_a, "admin")
    await browser.login(admin)
    owner_membership = await _membership_id(tenant_a, tenant_a.owner.id)
    member_membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    members_page = f"/o/{tenant_a.slug}/members"
    demote = await browser.post(
        f"{members_page}/{owner_membership}/role", {"role": "member"}, page=members_page
    )
    promote = await browser.post(
        f"{members_page}/{member_membership}/role", {"role": "owner"}, page=members_page
    )
    invite = await browser.post(
        f"{members_page}/invite", {"email": "boss@example.org", "role": "owner"}, page=members_page
    )
    remove = await browser.post(
        f"{members_page}/{owner_membership}/remove", {"confirm": "yes"}, page=members_page
    )
    for response in (demote, promote, invite):
        assert response.status_code == 403
        assert "Only an owner can appoint or change an owner." in response.text
    assert remove.status_code == 403
    assert "Only an owner can remove an owner." in remove.text
    assert await _roles(tenant_a) == {
        tenant_a.owner.email: "owner",
        tenant_a.member.email: "member",
        admin.email: "admin",
    }
    assert await audit_actions(tenant_a.id) == before


# --- settings --------------------------------------------------------------------------


def _settings_form(**change: str) -> dict[str, str]:
    return {"name": "Renamed Org", "default_locale": "fr", "brand_colour": "#1D4ED8", **change}


async def test_settings_change_name_language_and_colour_in_one_event(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    before = await audit_actions(tenant_a.id)
    page = f"/o/{tenant_a.slug}/settings"
    response = await browser.post(page, _settings_form(), page=page)
    assert response.status_code == 303
    assert await _organization(tenant_a) == {
        "name": "Renamed Org",
        "default_locale": "fr",
        "brand_colour": "#1d4ed8",
        "logo_data_url": None,
    }
    assert await audit_actions(tenant_a.id) == [*before, "organization.updated"]
    shown = await browser.get(page)
    assert "Your changes are saved." in shown.text
    assert "/brand/1d4ed8.css" in shown.text


async def test_saving_unchanged_settings_records_nothing(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    await browser.post(page, _settings_form(), page=page)
    before = await audit_actions(tenant_a.id)
    again = await browser.post(page, _settings_form(), page=page)
    assert again.status_code == 303
    assert await audit_actions(tenant_a.id) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"brand_colour": "red"}, "Enter a colour as #rrggbb."),
        ({"brand_colour": "#12345g"}, "Enter a colour as #rrggbb."),
        ({"brand_colour": "#fff"}, "Enter a colour as #rrggbb."),
        ({"brand_colour": "#1d4ed8; background: url(x)"}, "Enter a colour as #rrggbb."),
        # mid grey: white text reads at 4.48:1, the dark ink at 3.96:1, both under 4.5
        ({"brand_colour": "#777777"}, "Text on this colour would be hard to read"),
        ({"name": "x" * 201}, "This field is too long (200 characters at most)."),
        ({"name": "   "}, "This field is required."),
        ({"name": "Bad\x00Name"}, "This field contains characters that are not allowed."),
        ({"name": "Bad\u202eName"}, "This field contains characters that are not allowed."),
        ({"default_locale": "xx"}, "Choose one of the offered languages."),
    ],
)
async def test_bad_settings_are_refused_and_nothing_is_written(
    owner: Browser, shared: TenantFixture, change: dict[str, str], message: str
) -> None:
    org_before = await _organization(shared)
    before = await audit_actions(shared.id)
    page = f"/o/{shared.slug}/settings"
    response = await owner.post(page, _settings_form(**change), page=page)
    assert response.status_code == 422
    assert message in response.text
    assert await _organization(shared) == org_before
    assert await audit_actions(shared.id) == before


async def test_a_logo_is_uploaded_served_and_removed_each_in_one_event(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    name = tenant_a.owner_ctx.tenant.name
    logo = png(LOGO_MAX_BYTES)  # the limit itself is allowed
    before = await audit_actions(tenant_a.id)
    response = await browser.post(
        page, _settings_form(name=name), page=page, files={"logo": ("logo.png", logo, "image/png")}
    )
    assert response.status_code == 303, response.text
    assert await audit_actions(tenant_a.id) == [*before, "organization.updated"]
    served = await client.get(f"/logos/{tenant_a.slug}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == logo
    removed = await browser.post(page, _settings_form(name=name, remove_logo="on"), page=page)
    assert removed.status_code == 303
    assert (await _organization(tenant_a))["logo_data_url"] is None
    assert await audit_actions(tenant_a.id) == [*before, *["organization.updated"] * 2]
    assert (await client.get(f"/logos/{tenant_a.slug}")).status_code == 404


@pytest.mark.parametrize(
    ("filename", "content", "content_type", "message"),
    [
        # The message states the constant: changing one without the other fails here.
        ("big.png", png(LOGO_MAX_BYTES + 1), "image/png", TOO_BIG),
        ("big.png", png(LOGO_MAX_BYTES * 5), "image/png", TOO_BIG),
        ("logo.gif", b"GIF89a" + b"\0" * 10, "image/gif", "must be a PNG, JPEG, WebP or SVG"),
        ("notes.txt", b"hello", "text/plain", "must be a PNG, JPEG, WebP or SVG"),
        ("fake.png", b"not a png at all", "image/png", "The logo file is not a valid image."),
        (
            "evil.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "image/svg+xml",
            "The logo file is not a valid image.",
        ),
    ],
)
async def test_a_bad_logo_is_refused_and_nothing_is_written(
    owner: Browser,
    shared: TenantFixture,
    filename: str,
    content: bytes,
    content_type: str,
    message: str,
) -> None:
    page = f"/o/{shared.slug}/settings"
    org_before = await _organization(shared)
    before = await audit_actions(shared.id)
    response = await owner.post(
        page,
        _settings_form(),  # a new name too: refused with the logo, not half-saved
        page=page,
        files={"logo": (filename, content, content_type)},
    )
    assert response.status_code == 422
    assert message in response.text
    assert "Renamed Org" in response.text  # what was typed is kept
    assert await _organization(shared) == org_before
    assert await audit_actions(shared.id) == before


async def test_a_request_beyond_the_body_limit_is_413_and_writes_nothing(
    owner: Browser, shared: TenantFixture
) -> None:
    page = f"/o/{shared.slug}/settings"
    org_before = await _organization(shared)
    response = await owner.post(
        page, _settings_form(), page=page, files={"logo": ("huge.png", png(3_000_000), "image/png")}
    )
    assert response.status_code == 413
    assert "What you sent is too large." in response.text
    assert await _organization(shared) == org_before


async def test_members_see_the_settings_but_cannot_change_them(
    member: Browser, shared: TenantFixture
) -> None:
    page = f"/o/{shared.slug}/settings"
    shown = await member.get(page)
    assert shown.status_code == 200
    # read as text, with why: no field that looks editable, no form that cannot be sent
    main = shown.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "<input" not in main
    assert "<select" not in main
    assert f'action="{page}"' not in shown.text
    assert "Only the organization's owners and administrators can change these settings." in (
        html.unescape(shown.text)
    )
    assert "<dt>Name of the organization</dt>" in main
    org_before = await _organization(shared)
    response = await member.post(page, _settings_form(), page=page)
    assert response.status_code == 403
    assert "You do not have permission to do this." in response.text
    assert await _organization(shared) == org_before


# --- audit log -------------------------------------------------------------------------


async def _seed_events(tenant: TenantFixture, rows: list[tuple[datetime, str, str]]) -> None:
    """Audit events as (when, action, actor label); the log is append-only, so only tests
    that own a fresh tenant may add to it."""
    async with as_tenant(tenant.id):
        for occurred_at, action, actor in rows:
            await database.execute(
                "INSERT INTO audit_event (tenant_id, id, occurred_at, actor_kind, actor_label, "
                "action) VALUES ($1, $2, $3, 'user', $4, $5)",
                tenant.id,
                uuid4(),
                occurred_at,
                actor,
                action,
            )


def _events_on(page: httpx.Response) -> list[str]:
    return re.findall(r"<td>[^<]*<code class=\"muted\">([^<]+)</code></td>", page.text)


async def test_audit_log_pages_through_every_event_once_even_with_equal_times(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    moment = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)
    # 130 events at only three instants: the id breaks the ties.
    await _seed_events(
        tenant_a,
        [(moment + timedelta(seconds=i % 3), f"test.event{i:03}", "seed") for i in range(130)],
    )
    await browser.login(tenant_a.owner)
    seen: list[str] = []
    url = f"/o/{tenant_a.slug}/audit?actor=seed"
    pages = 0
    while url:
        page = await browser.get(url)
        assert page.status_code == 200
        seen += _events_on(page)
        pages += 1
        link = re.search(r'href="(\?[^"]*cursor=[^"]+)"', page.text)
        url = f"/o/{tenant_a.slug}/audit" + link.group(1).replace("&amp;", "&") if link else ""
    assert pages == 3  # 50 + 50 + 30
    assert sorted(seen) == [f"test.event{i:03}" for i in range(130)]


async def test_audit_log_filters_by_action_actor_and_days(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    # The organization's days: Europe/Paris by default (UTC+2 in summer).
    await _seed_events(
        tenant_a,
        [
            (datetime(2031, 6, 1, 21, 59, tzinfo=UTC), "test.before", "Zoé Martin"),  # 1 June
            (datetime(2031, 6, 1, 22, 0, tzinfo=UTC), "test.first_day", "Zoé Martin"),  # 2 June
            (datetime(2031, 6, 3, 21, 59, tzinfo=UTC), "test.last_day", "Ali Ben"),  # 3 June
            (datetime(2031, 6, 3, 22, 0, tzinfo=UTC), "test.after", "Ali Ben"),  # 4 June
        ],
    )
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/audit"
    days = await browser.get(base, params={"since": "2031-06-02", "until": "2031-06-03"})
    assert _events_on(days) == ["test.last_day", "test.first_day"]
    actor = await browser.get(base, params={"actor": "zoé"})
    assert _events_on(actor) == ["test.first_day", "test.before"]
    action = await browser.get(base, params={"action": "test.after"})
    assert _events_on(action) == ["test.after"]
    both = await browser.get(base, params={"action": "test.after", "actor": "Zoé"})
    assert _events_on(both) == []
    assert "No event matches these filters." in both.text


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"since": "yesterday"}, 422, "Enter a date as YYYY-MM-DD."),
        ({"until": "2031-02-30"}, 422, "Enter a date as YYYY-MM-DD."),
        ({"since": "2024-W01-1"}, 422, "Enter a date as YYYY-MM-DD."),
        # at the calendar's edges a day's end, or its midnight in the zone, would overflow
        ({"until": "9999-12-31"}, 422, "Enter a date between the years 2000 and 2100."),
        ({"since": "0001-01-01"}, 422, "Enter a date between the years 2000 and 2100."),
        ({"cursor": "forged"}, 422, "This page link is not valid."),
        ({"cursor": "MjAzMS0wMS0wMXxub3QtYS11dWlk"}, 422, "This page link is not valid."),
        ({"actor": "x" * 201}, 422, "This field is too long"),
        ({"actor": "a\x00b"}, 422, "characters that are not allowed"),
        ({"action": "a\x00b"}, 422, "characters that are not allowed"),
        ({"actor": "\\"}, 200, "No event matches these filters."),
        ({"actor": "100%_"}, 200, "No event matches these filters."),
    ],
)
async def test_bad_audit_filters_answer_a_message_not_an_error(
    owner: Browser,
    shared: TenantFixture,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = await owner.get(f"/o/{shared.slug}/audit", params=params)
    assert response.status_code == status
    assert message in response.text


# --- API tokens ------------------------------------------------------------------------


async def test_a_new_token_is_shown_once_stored_as_a_digest_and_works(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/tokens"
    before = await audit_actions(tenant_a.id)
    created = await browser.post(
        page,
        {"name": "HR system", "scopes": ["org:members:read"], "expires_in_days": "30"},
        page=page,
    )
    assert created.status_code == 200
    assert "Copy this token now: it will not be shown again." in created.text
    found = re.search(r'value="(jalon_[0-9a-f]{32}_[^"]+)"', created.text)
    assert found
    token = found.group(1)
    assert token.startswith(f"jalon_{tenant_a.id.hex}_")
    assert await audit_actions(tenant_a.id) == [*before, "token.created"]
    assert token not in (await browser.get(page)).text  # never shown again
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT token_hash, prefix, scopes, expires_at > now() + interval '29 days' AS later "
            "FROM api_token WHERE tenant_id = $1",
            tenant_a.id,
        )
    assert rows == [
        {
            "token_hash": hashlib.sha256(token.encode()).digest(),
            "prefix": token[:14],
            "scopes": ["org:members:read"],
            "later": True,
        }
    ]
    assert (await client.get("/api/v1/members", headers=bearer(token))).status_code == 200


async def test_revoking_a_token_records_one_event_and_the_token_stops_working(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx, "org:organization:read")
    async with as_tenant(tenant_a.id):
        token_id = (
            await database.fetch("SELECT id FROM api_token WHERE tenant_id = $1", tenant_a.id)
        )[0]["id"]
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/tokens"
    before = await audit_actions(tenant_a.id)
    response = await browser.post(f"{page}/{token_id}/revoke", {"confirm": "yes"}, page=page)
    assert response.status_code == 303
    assert await audit_actions(tenant_a.id) == [*before, "token.revoked"]
    assert (await client.get("/api/v1/organization", headers=bearer(token))).status_code == 401
    again = await browser.post(f"{page}/{token_id}/revoke", {"confirm": "yes"}, page=page)
    assert again.status_code == 303
    assert await audit_actions(tenant_a.id) == [*before, "token.revoked"]  # nothing new


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "No scope"}, "Choose at least one scope."),
        ({"name": "Odd", "scopes": ["org:tokens:manage"]}, "Unknown scope: org:tokens:manage."),
        ({"name": "Odd", "scopes": ["org:owners:manage"]}, "Unknown scope: org:owners:manage."),
        ({"name": "", "scopes": ["org:members:read"]}, "This field is required."),
        ({"name": "x" * 101, "scopes": ["org:members:read"]}, "This field is too long"),
        (
            {"name": "Days", "scopes": ["org:members:read"], "expires_in_days": "abc"},
            "Enter a number of days.",
        ),
        (
            {"name": "Days", "scopes": ["org:members:read"], "expires_in_days": "²"},
            "Enter a number of days.",
        ),
        (
            {"name": "Days", "scopes": ["org:members:read"], "expires_in_days": "0"},
            "Choose an expiry between 1 and 730 days.",
        ),
        (
            {"name": "Days", "scopes": ["org:members:read"], "expires_in_days": "9" * 40},
            "Enter a number of days.",
        ),
    ],
)
async def test_bad_token_requests_are_refused_and_nothing_is_written(
    owner: Browser, shared: TenantFixture, form: dict[str, Any], message: str
) -> None:
    page = f"/o/{shared.slug}/tokens"
    before = await audit_actions(shared.id)
    response = await owner.post(page, form, page=page)
    assert response.status_code == 422
    assert message in response.text
    assert "jalon_" not in response.text
    async with as_tenant(shared.id):
        assert await database.fetch("SELECT 1 FROM api_token WHERE tenant_id = $1", shared.id) == []
    assert await audit_actions(shared.id) == before


# --- CSRF ------------------------------------------------------------------------------


async def test_a_forged_csrf_token_is_refused_in_the_users_language_and_writes_nothing(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    admin = await _add(tenant_a, "admin", locale="fr")  # speaks French, like the browser
    await browser.login(admin)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    before = await audit_actions(tenant_a.id)
    base = f"/o/{tenant_a.slug}"
    french = {"accept-language": "fr-FR,fr;q=0.9"}
    attempts = [
        (f"{base}/members/invite", {"email": "forged@example.org", "role": "member"}),
        (f"{base}/members/{membership}/role", {"role": "admin"}),
        (f"{base}/members/{membership}/remove", {}),
        (f"{base}/settings", _settings_form()),
        (f"{base}/tokens", {"name": "Forged", "scopes": "org:members:read"}),
    ]
    for path, form in attempts:
        forged = await browser.client.post(
            path, data={"_csrf_token": "forged", **form}, headers=french
        )
        missing = await browser.client.post(path, data=form, headers=french)
        for response in (forged, missing):
            assert response.status_code == 403, path
            assert "Ce formulaire a expiré. Rechargez la page" in response.text
    assert await audit_actions(tenant_a.id) == before
    assert (await _roles(tenant_a))[tenant_a.member.email] == "member"
    assert (await _organization(tenant_a))["name"] == tenant_a.owner_ctx.tenant.name
    async with as_tenant(tenant_a.id):
        assert (
            await database.fetch("SELECT 1 FROM invitation WHERE tenant_id = $1", tenant_a.id) == []
        )
        assert (
            await database.fetch("SELECT 1 FROM api_token WHERE tenant_id = $1", tenant_a.id) == []
        )


async def test_a_slug_that_names_an_exempt_path_is_still_protected_from_forgery(
    browser: Browser, db: str
) -> None:
    # The health probes and the token API are exempt from CSRF; an organization whose slug
    # starts like one of them is not.
    owner = await make_user("Health Owner")
    slug = f"healthz-{uuid4().hex[:6]}"
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    fields = OrganizationFields(name="Health Corp", slug=slug, kind="company", country="FR")
    await create_organization(fields, owner, actor)
    await browser.login(owner)
    forged = await browser.client.post(f"/o/{slug}/settings", data=_settings_form(name="Forged"))
    assert forged.status_code == 403
    assert "This form has expired." in forged.text


async def test_the_csrf_refusal_follows_the_signed_in_persons_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await _add(tenant_a, "admin", locale="fr")  # an English browser (the client's)
    await browser.login(person)
    response = await browser.client.post(
        f"/o/{tenant_a.slug}/settings", data={"_csrf_token": "forged", **_settings_form()}
    )
    assert response.status_code == 403
    assert "Ce formulaire a expiré" in response.text


async def test_a_light_brand_colour_gets_dark_text_on_its_buttons(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    """A yellow brand is accepted: its buttons carry the dark ink (11.6:1) instead of white
    (1.5:1), and its links a darker shade that reads on white."""
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    response = await browser.post(page, _settings_form(brand_colour="#facc15"), page=page)
    assert response.status_code == 303
    settings_page = await browser.get(page)
    assert '<link rel="stylesheet" href="/brand/facc15.css">' in settings_page.text
    stylesheet = (await client.get("/brand/facc15.css")).text
    assert "--on-brand: #111827;" in stylesheet
    assert "--brand-text: #8c720c;" in stylesheet


async def test_a_colour_no_text_can_read_on_is_refused_in_french(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    await browser.post("/locale", {"locale": "fr"}, page=page)
    response = await browser.post(page, _settings_form(brand_colour="#777777"), page=page)
    assert response.status_code == 422
    assert "Un texte sur cette couleur serait difficile à lire" in response.text
    assert 'id="f-brand_colour-error"' in response.text  # beside the colour field


async def test_a_colour_saved_before_the_contrast_rule_does_not_block_other_changes(
    browser: Browser, tenant_a: TenantFixture, owner_url: str
) -> None:
    """An organization whose stored colour no text reads on (saved before the rule) changes
    its name: the form sends the old colour back, which stays until it is changed; a new
    unreadable colour is still refused."""
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute(
            "UPDATE organization SET brand_colour = '#777777' WHERE id = $1", tenant_a.id
        )
    finally:
        await owner.close()
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    kept = await browser.post(page, _settings_form(brand_colour="#777777"), page=page)
    assert kept.status_code == 303
    refused = await browser.post(page, _settings_form(brand_colour="#7a7a7a"), page=page)
    assert refused.status_code == 422
