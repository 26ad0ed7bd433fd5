"""Closing or archiving a campaign, removing a member (or leaving) and revoking an API token
ask first, on a page of their own that says what happens: the first click acts on nothing,
the confirmed form does. No script is needed (the Content-Security-Policy forbids inline
ones): the buttons are links to the confirmation page, whose form posts `confirm=yes`."""

from __future__ import annotations

import html

from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign, get_campaign
from core import database
from tests.api.conftest import Browser, audit_actions, issue_token
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _membership_id(tenant: TenantFixture, user_id: object) -> str:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2", tenant.id, user_id
        )
    return str(rows[0]["id"])


def _confirmation_form(page: str, action: str) -> None:
    """The page posts the confirmed form to `action`, and offers to cancel."""
    assert f'<form method="post" action="{action}"' in page
    assert 'name="confirm" value="yes"' in page
    assert "Cancel" in page


async def test_closing_and_archiving_a_campaign_ask_first_and_say_what_happens(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(name="Spring check", profile_key="digcomp", locales=("en", "fr")),
    )
    page = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.owner)
    await browser.post(f"{page}/activate", page=page)
    shown = await browser.get(page)
    assert f'href="{page}/close"' in shown.text
    assert f'action="{page}/close"' not in shown.text  # a link to the question, not the act
    before = await audit_actions(tenant_a.id)

    question = await browser.get(f"{page}/close")
    assert question.status_code == 200
    text = html.unescape(question.text)
    assert "Close the campaign “Spring check”?" in text
    assert "Participants can no longer start it" in text
    assert "The results stay here, and you can open the campaign again later." in text
    _confirmation_form(question.text, f"{page}/close")
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).status == "active"

    # A form without the confirmation (an old page, a script) closes nothing.
    unconfirmed = await browser.post(f"{page}/close", {}, page=page)
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == f"{page}/close"
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).status == "active"
    assert await audit_actions(tenant_a.id) == before

    closed = await browser.post(f"{page}/close", {"confirm": "yes"}, page=f"{page}/close")
    assert closed.status_code == 303
    assert closed.headers["location"] == page
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).status == "closed"

    question = await browser.get(f"{page}/archive")
    text = html.unescape(question.text)
    assert "Archive the campaign “Spring check”?" in text
    assert "Its link stops working for everyone" in text
    assert "cannot be opened again" in text
    _confirmation_form(question.text, f"{page}/archive")
    await browser.post(f"{page}/archive", {}, page=page)
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).status == "closed"
    await browser.post(f"{page}/archive", {"confirm": "yes"}, page=f"{page}/archive")
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).status == "archived"
    # Archived already (an old tab, a bookmark): nothing to ask, back to the campaign's page,
    # as a revoked token's page does; closing it has nothing to do either.
    for action in ("archive", "close"):
        again = await browser.get(f"{page}/{action}")
        assert (again.status_code, again.headers["location"]) == (303, page)

    # Another organization's campaign: the question is not found either.
    other = await create_campaign(
        tenant_b.owner_ctx,
        CampaignFields(name="Theirs", profile_key="digcomp", locales=("en", "fr")),
    )
    foreign = await browser.get(f"/o/{tenant_a.slug}/campaigns/{other.id}/close")
    assert foreign.status_code == 404


async def test_removing_a_member_asks_first(browser: Browser, tenant_a: TenantFixture) -> None:
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    members = f"/o/{tenant_a.slug}/members"
    await browser.login(tenant_a.owner)
    listed = await browser.get(members)
    assert f'href="{members}/{membership}/remove"' in listed.text
    before = await audit_actions(tenant_a.id)

    question = await browser.get(f"{members}/{membership}/remove")
    assert question.status_code == 200
    text = html.unescape(question.text)
    assert f"Remove {tenant_a.member.name} from Alpha Org?" in text
    assert f"({tenant_a.member.email}) loses access to this organization at once." in text
    _confirmation_form(question.text, f"{members}/{membership}/remove")

    unconfirmed = await browser.post(f"{members}/{membership}/remove", {}, page=members)
    assert unconfirmed.headers["location"] == f"{members}/{membership}/remove"
    assert await audit_actions(tenant_a.id) == before

    removed = await browser.post(
        f"{members}/{membership}/remove", {"confirm": "yes"}, page=f"{members}/{membership}/remove"
    )
    assert removed.status_code == 303
    assert await audit_actions(tenant_a.id) == [*before, "member.removed"]
    assert (await browser.get(f"{members}/{membership}/remove")).status_code == 404


async def test_leaving_asks_first_and_a_plain_member_cannot_open_someone_elses_removal(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    own = await _membership_id(tenant_a, tenant_a.member.id)
    owner = await _membership_id(tenant_a, tenant_a.owner.id)
    members = f"/o/{tenant_a.slug}/members"
    await browser.login(tenant_a.member)
    question = await browser.get(f"{members}/{own}/remove")
    assert question.status_code == 200
    text = html.unescape(question.text)
    assert "Leave Alpha Org?" in text
    assert "To come back, an administrator has to invite you again." in text
    assert (await browser.get(f"{members}/{owner}/remove")).status_code == 403
    before = await audit_actions(tenant_a.id)
    await browser.post(f"{members}/{own}/remove", {}, page=members)
    assert await audit_actions(tenant_a.id) == before
    left = await browser.post(f"{members}/{own}/remove", {"confirm": "yes"}, page=members)
    assert left.headers["location"] == "/o/"
    assert await audit_actions(tenant_a.id) == [*before, "member.left"]


async def test_revoking_a_token_asks_first(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await issue_token(tenant_a.owner_ctx, "org:organization:read")
    async with as_tenant(tenant_a.id):
        token_id = (
            await database.fetch("SELECT id FROM api_token WHERE tenant_id = $1", tenant_a.id)
        )[0]["id"]
    tokens = f"/o/{tenant_a.slug}/tokens"
    await browser.login(tenant_a.owner)
    listed = await browser.get(tokens)
    assert f'href="{tokens}/{token_id}/revoke"' in listed.text
    before = await audit_actions(tenant_a.id)

    question = await browser.get(f"{tokens}/{token_id}/revoke")
    assert question.status_code == 200
    text = html.unescape(question.text)
    assert "Revoke the API token “test integration”?" in text
    assert "Programs using it are refused from now on." in text
    _confirmation_form(question.text, f"{tokens}/{token_id}/revoke")

    await browser.post(f"{tokens}/{token_id}/revoke", {}, page=tokens)
    assert await audit_actions(tenant_a.id) == before
    await browser.post(f"{tokens}/{token_id}/revoke", {"confirm": "yes"}, page=tokens)
    assert await audit_actions(tenant_a.id) == [*before, "token.revoked"]
    # A revoked token's question leads back to the list.
    again = await browser.get(f"{tokens}/{token_id}/revoke")
    assert again.status_code == 303
    assert again.headers["location"] == tokens

    await issue_token(tenant_b.owner_ctx, "org:organization:read")
    async with as_tenant(tenant_b.id):
        theirs = (
            await database.fetch("SELECT id FROM api_token WHERE tenant_id = $1", tenant_b.id)
        )[0]["id"]
    assert (await browser.get(f"{tokens}/{theirs}/revoke")).status_code == 404
    assert (await browser.get(f"{tokens}/not-a-uuid/revoke")).status_code == 404


async def test_an_unconfirmed_form_for_an_unknown_or_foreign_id_is_not_found(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """The first click on an id that is not this organization's (unknown, mangled, another
    tenant's) is a 404, not a redirect to a question that would then be a 404."""
    theirs = await create_campaign(
        tenant_b.owner_ctx,
        CampaignFields(name="Theirs", profile_key="digcomp", locales=("en", "fr")),
    )
    their_member = await _membership_id(tenant_b, tenant_b.member.id)
    await issue_token(tenant_b.owner_ctx, "org:organization:read")
    async with as_tenant(tenant_b.id):
        their_token = (
            await database.fetch("SELECT id FROM api_token WHERE tenant_id = $1", tenant_b.id)
        )[0]["id"]
    base = f"/o/{tenant_a.slug}"
    await browser.login(tenant_a.owner)
    before = await audit_actions(tenant_a.id)
    for ident in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        for action in ("close", "archive"):
            sent = await browser.post(f"{base}/campaigns/{ident}/{action}", {}, page=base)
            assert sent.status_code == 404
        sent = await browser.post(f"{base}/members/{ident}/remove", {}, page=base)
        assert sent.status_code == 404
        sent = await browser.post(f"{base}/tokens/{ident}/revoke", {}, page=base)
        assert sent.status_code == 404
    assert (
        await browser.post(f"{base}/campaigns/{theirs.id}/close", {}, page=base)
    ).status_code == 404
    assert (
        await browser.post(f"{base}/members/{their_member}/remove", {}, page=base)
    ).status_code == 404
    assert (
        await browser.post(f"{base}/tokens/{their_token}/revoke", {}, page=base)
    ).status_code == 404
    assert await audit_actions(tenant_a.id) == before
    assert (await get_campaign(tenant_b.owner_ctx, theirs.id)).status == theirs.status
