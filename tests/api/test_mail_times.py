"""Times in mail and in the development outbox (issue 14, defect 5): a mail written for an
organization writes its days and moments in the reader's language and the organization's
zone, the zone named; the outbox shows when each message was written in the zone of its
organization, or in UTC for a message outside any, and says which."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar

from billing import dunning
from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from core import database, mail
from core.l10n import format_day, format_moment
from core.settings import get_settings
from tenants.invitations import get_invitation, invite
from tests.api.conftest import Browser
from tests.api.test_campaign_invitations import _invite, _learners, _mails
from tests.billing.test_dunning import NOW, billed, system
from tests.conftest import HeldQueue, TenantFixture

pytestmark = pytest.mark.usefixtures("in_process")

PARIS = ZoneInfo("Europe/Paris")


def _loopback(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8000", headers={"accept-language": "en"}
    )


async def _held(address: str) -> mail.OutboxMessage:
    found = [message for message in await mail.recent_mail(500) if message.to_address == address]
    assert len(found) == 1, address
    return found[0]


def _article(page: str, subject: str) -> str:
    for article in re.findall(r'<article class="card mail">(.*?)</article>', page, re.S):
        if f"<h2>{subject}</h2>" in article:
            return str(article)
    raise AssertionError(f"no message {subject!r} on the outbox page")


async def test_the_outbox_names_the_zone_of_each_message(
    app: Litestar, tenant_a: TenantFixture
) -> None:
    assert tenant_a.owner_ctx.tenant.timezone == "Europe/Paris"
    member = f"new-{uuid4().hex[:8]}@example.org"
    invitation_id = await invite(tenant_a.owner_ctx, member, "member", get_settings())
    tenantless = f"nobody-{uuid4().hex[:8]}@example.org"
    async with database.global_transaction():
        await mail.queue_mail(tenantless, "Sign-in link " + tenantless, "/login/link/x")
    invited, signin = await _held(member), await _held(tenantless)
    assert (invited.zone, signin.zone) == ("Europe/Paris", None)

    async with _loopback(app) as client:
        page = (await client.get("/dev/outbox")).text
    in_paris = _article(page, invited.subject)
    assert format_moment(invited.created_at, "en", PARIS) in in_paris
    assert "(Europe/Paris)" in in_paris
    in_utc = _article(page, signin.subject)
    assert format_moment(signin.created_at, "en", UTC) in in_utc
    assert in_utc.count("(UTC)") == 1

    # The invitation says until when it works, in the organization's zone, named.
    expires_at = (await get_invitation(tenant_a.owner_ctx, invitation_id)).expires_at
    expires = format_moment(expires_at, "en", PARIS, "long")
    assert expires.endswith("(Europe/Paris)")
    assert f"Accept by {expires}:\n" in invited.body_text


async def test_billing_notices_write_days_and_moments_for_their_reader(
    tenant_a: TenantFixture,
) -> None:
    invoice, email = await billed(tenant_a)
    assert invoice.due_on is not None
    due = datetime.combine(invoice.due_on, datetime.min.time(), UTC)
    await dunning.run_dunning(system(tenant_a), at=due + timedelta(days=1, hours=1))
    issued, overdue = sorted(
        [m for m in await mail.recent_mail(500) if m.to_address == email],
        key=lambda m: m.created_at,
    )
    day = format_day(invoice.due_on, "en", width="long")  # "2 January 2027"
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", day)
    assert f"due on {day}." in issued.body_text
    assert f"was due on {day} and" in overdue.body_text
    deadline = invoice.due_on + timedelta(days=dunning.TRANSFER_GRACE_DAYS)
    assert f"before {format_day(deadline, 'en', width='long')}," in overdue.body_text
    assert invoice.due_on.isoformat() not in issued.body_text + overdue.body_text
    assert (issued.zone, overdue.zone) == ("Europe/Paris", "Europe/Paris")


async def test_a_failed_card_payment_names_its_deadline_in_the_organizations_zone(
    tenant_a: TenantFixture,
) -> None:
    _, email = await billed(tenant_a, gateway="stripe")
    await dunning.payment_failed(system(tenant_a), at=NOW, reason="card_declined")
    notice = await _held(email)
    # the grace period after 3 December 2026, 09:00 UTC: 10:00 in Paris, the zone named
    deadline = format_moment(NOW + timedelta(days=dunning.CARD_GRACE_DAYS), "en", PARIS, "long")
    assert deadline.endswith(" December 2026, 10:00 (Europe/Paris)")
    assert f"before {deadline}," in notice.body_text


async def test_a_campaign_invitation_says_until_which_day_the_test_is_open(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    closes = datetime(2027, 1, 1, tzinfo=PARIS)  # open all day on 31 December, in Paris
    campaign = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(name="Year end", profile_key="digcomp", closes_at=closes),
    )
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    assert (await _invite(browser, tenant_a, campaign)).status_code == 303
    await held.run()
    mails: dict[str, Any] = {m["to_address"]: m for m in await _mails(f"bob-{tag}@example.org")}
    body = mails[f"bob-{tag}@example.org"]["body_text"]
    # Bob has no account: the campaign's first language, French
    assert body.endswith("\n\nLe test est ouvert jusqu’au 31 décembre 2026 inclus.")
