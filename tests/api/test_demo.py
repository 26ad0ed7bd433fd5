"""`jalon demo` seeds a company, a city and a foreign agency with members, and can run again."""

from __future__ import annotations

from typing import Any

import pyotp

from api.demo import (
    ORGANIZATIONS,
    PASSWORD,
    STAFF_PEOPLE,
    STAFF_SIGN_IN,
    DemoOrganization,
    seed,
)
from campaigns.campaign_listing import all_campaigns
from campaigns.participation.landing import resolve_code
from campaigns.service import activate_campaign, close_campaign, duplicate_campaign
from core import database
from core.ratelimit import MemoryRateLimiter
from core.settings import Settings
from tenants.accounts import authenticate, find_user_by_email
from tenants.context import Actor, TenantContext
from tenants.organizations import member_context, tenant_by_slug
from tenants.staff import begin_enrolment, confirm_enrolment, staff_member_of
from tests.db import as_tenant


async def _census() -> dict[str, Any]:
    census: dict[str, Any] = {}
    for demo in ORGANIZATIONS:
        tenant = await tenant_by_slug(demo.fields.slug)
        async with as_tenant(tenant.id):
            members = await database.fetch("SELECT role FROM membership")
            invitations = await database.fetch("SELECT 1 FROM invitation")
            [org] = await database.fetch(
                "SELECT kind, status FROM organization WHERE id = $1", tenant.id
            )
        census[demo.fields.slug] = (
            org["kind"],
            sorted(m["role"] for m in members),
            len(invitations),
        )
    return census


async def test_the_demo_seeds_three_kinds_of_tenant_and_runs_again_unchanged(
    db: str, settings: Settings
) -> None:
    first = await seed()
    census = await _census()
    assert {kind for kind, _, _ in census.values()} == {
        "company",
        "local_authority",
        "foreign_agency",
    }
    for _kind, roles, invitations in census.values():
        assert "owner" in roles
        assert len(roles) >= 2
        assert invitations == 1

    assert len(first.campaigns) == len(ORGANIZATIONS)
    for line in first.campaigns:
        landing = await resolve_code(line.split("/c/")[1].split()[0])  # open, or it raises
        assert landing.name in {demo.campaign.name for demo in ORGANIZATIONS}

    again = await seed()
    assert again == first  # same accounts, same campaign links
    assert await _census() == census


async def test_every_printed_demo_sign_in_works(db: str, settings: Settings) -> None:
    await seed()
    limiter = MemoryRateLimiter()
    for demo in ORGANIZATIONS:
        for person in demo.people:
            account = await authenticate(person.email, PASSWORD, "127.0.0.1", limiter, settings)
            assert account.email == person.email


async def test_the_demo_staff_sign_in_and_set_up_their_app_at_first_sign_in(
    db: str, settings: Settings
) -> None:
    """An account manager and a content editor, with the demo password; seeding again leaves
    them (and a second factor they set up) as they are."""
    first = await seed()
    limiter = MemoryRateLimiter()
    for person in STAFF_PEOPLE:
        account = await authenticate(person.email, PASSWORD, "127.0.0.1", limiter, settings)
        assert account.staff_role == person.role
        [line] = [line for line in first.accounts if line.startswith(person.email)]
        assert STAFF_SIGN_IN in line
    assert {p.role for p in STAFF_PEOPLE} >= {"account_manager", "content_editor"}
    editor = await find_user_by_email("content@jalon.example")
    assert editor is not None
    secret = await begin_enrolment(editor.id)
    await confirm_enrolment(editor.id, pyotp.TOTP(secret).now())
    again = await seed()
    assert again.accounts == first.accounts
    member = await staff_member_of(editor.id)
    assert member is not None
    assert member.second_factor  # kept
    assert member.role == "content_editor"


async def test_the_demo_prints_an_open_campaign_after_a_copy_of_it_was_closed(
    db: str, settings: Settings
) -> None:
    """Someone duplicates a demo campaign, opens the copy and closes it (or leaves another
    copy as a draft): seeding again prints a link that participants can open, the original's,
    in every organization. When the original itself is closed, a new open one is made."""
    first = await seed()
    for demo in ORGANIZATIONS:
        ctx = await _owner_context(demo)
        original = next(c for c in await all_campaigns(ctx) if c.name == demo.campaign.name)
        closed_copy = await duplicate_campaign(ctx, original.id)
        await activate_campaign(ctx, closed_copy.id)
        await close_campaign(ctx, closed_copy.id)
        await duplicate_campaign(ctx, original.id)  # a draft copy, whose link answers 404
    again = await seed()
    assert again.campaigns == first.campaigns
    for line in again.campaigns:
        await resolve_code(line.split("/c/")[1].split()[0])  # open, or it raises

    belleval = next(d for d in ORGANIZATIONS if d.fields.slug == "ville-de-belleval")
    ctx = await _owner_context(belleval)
    for campaign in await all_campaigns(ctx):
        if campaign.status == "active":
            await close_campaign(ctx, campaign.id)
    third = await seed()
    [line] = [line for line in third.campaigns if belleval.fields.name in line]
    assert line not in first.campaigns
    landing = await resolve_code(line.split("/c/")[1].split()[0])
    assert landing.name == belleval.campaign.name


async def _owner_context(demo: DemoOrganization) -> TenantContext:
    owner = await find_user_by_email(demo.people[0].email)
    assert owner is not None
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    return await member_context(demo.fields.slug, owner, actor)


async def test_the_city_of_the_demo_offers_its_test_in_four_languages(
    db: str, settings: Settings
) -> None:
    """Belleval's residents' campaign can be taken in French, Dutch, German and English (the
    demo bank is written in all four)."""
    signed = await seed()
    belleval = next(d for d in ORGANIZATIONS if d.fields.slug == "ville-de-belleval")
    [line] = [line for line in signed.campaigns if belleval.fields.name in line]
    landing = await resolve_code(line.split("/c/")[1].split()[0])
    assert set(landing.locales) == {"fr", "nl", "de", "en"}
