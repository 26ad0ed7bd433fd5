"""Inviting learners to a campaign by mail, the reminders, and the console's participant page,
over HTTP (issue 14, gap 2): one mail per learner with an address, in their language, written
by a job (never in the request); a group only; a draft refused; reminders at most once each,
never to those who finished, idempotent; another organization's campaign and participation
are 404s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from campaigns.campaign_fields import Campaign
from campaigns.invitations import QUOTA_WINDOW_SECONDS, quota_key
from campaigns.learner_import import import_learners
from core import database
from core.database import global_transaction
from core.jobs import REGISTRY
from core.ratelimit import RedisRateLimiter
from core.settings import Settings
from tenants.members import add_member
from tests.api.conftest import Browser
from tests.campaigns.conftest import make_campaign
from tests.conftest import HeldQueue, TenantFixture, make_user
from tests.db import as_tenant

LEARNERS = (
    "name,email,external_id,groups\n"
    "Ann Archer,ann-{tag}@example.org,E-1,Nantes\n"
    "Bob Baker,bob-{tag}@example.org,E-2,Brest\n"
    "Carl Nomail,,E-3,Nantes\n"
    "Dora Done,dora-{tag}@example.org,E-4,Nantes\n"
)


async def _mails(*addresses: str) -> list[dict[str, Any]]:
    async with global_transaction():
        rows = await database.fetch(
            """SELECT to_address, subject, body_text FROM mail_message
               WHERE to_address = ANY($1::text[]) ORDER BY created_at""",
            list(addresses),
        )
    return [dict(row) for row in rows]


async def _learners(tenant: TenantFixture) -> tuple[str, dict[str, UUID]]:
    """Import the four learners; (the tag of their addresses, their ids by first name)."""
    tag = uuid4().hex[:8]
    await import_learners(tenant.owner_ctx, LEARNERS.format(tag=tag).encode())
    async with as_tenant(tenant.id):
        rows = await database.fetch("SELECT id, name FROM learner WHERE tenant_id = $1", tenant.id)
    return tag, {row["name"].split()[0]: row["id"] for row in rows}


async def _finish(tenant: TenantFixture, campaign: Campaign, learner_id: UUID) -> UUID:
    """A completed participation of the learner, with a result, written directly."""
    participation = uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                   status, external_id, completed_at, shared_at)
               VALUES ($1, $2, $3, $4, 1, 'shared', 'E-4', now(), now())""",
            tenant.id,
            participation,
            campaign.id,
            learner_id,
        )
        await database.execute(
            """INSERT INTO result (tenant_id, id, participation_id, level, score, competences,
                   mastered_skills)
               VALUES ($1, $2, $3, 3, 42, $4::jsonb, '{}')""",
            tenant.id,
            uuid4(),
            participation,
            '{"1.1": {"level": 4}, "2.1": {"level": 2}}',
        )
    return participation


async def _started_participant_page(
    browser: Browser, tenant: TenantFixture, campaign: Campaign, learner_id: UUID
) -> Any:
    """The console's page of a participation the learner has just started (written
    directly)."""
    participation = uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt)
               VALUES ($1, $2, $3, $4, 1)""",
            tenant.id,
            participation,
            campaign.id,
            learner_id,
        )
    return await browser.get(
        f"/o/{tenant.slug}/campaigns/{campaign.id}/participants/{participation}"
    )


async def _age_invitations(tenant: TenantFixture, days: int) -> None:
    async with as_tenant(tenant.id):
        await database.execute(
            """UPDATE campaign_invitation SET invited_at = $2 WHERE tenant_id = $1""",
            tenant.id,
            datetime.now(UTC) - timedelta(days=days, minutes=5),
        )


async def _invite(browser: Browser, tenant: TenantFixture, campaign: Campaign, **form: Any) -> Any:
    page = f"/o/{tenant.slug}/campaigns/{campaign.id}/invite"
    data = {"reminders": ["3", "7"], **form}
    return await browser.post(page, data, page=page)


async def test_each_learner_gets_one_mail_in_their_language_from_a_job(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, name="Digital basics", locales=("en", "fr"))
    tag, ids = await _learners(tenant_a)
    # Ann has a French account, verified, and started the test: her learner is hers.
    ann = await make_user("Ann Archer", locale="fr")
    async with global_transaction():
        await database.execute(
            "UPDATE user_account SET email = $2 WHERE id = $1", ann.id, f"ann-{tag}@example.org"
        )
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE learner SET user_id = $2 WHERE tenant_id = $1 AND id = $3",
            tenant_a.id,
            ann.id,
            ids["Ann"],
        )
    await _finish(tenant_a, campaign, ids["Dora"])
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}")
    assert f'href="/o/{tenant_a.slug}/campaigns/{campaign.id}/invite"' in page.text
    form = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/invite")
    assert "This invitation mails 2 learners." in form.text

    response = await _invite(browser, tenant_a, campaign)
    assert response.status_code == 303
    addresses = [f"{name}-{tag}@example.org" for name in ("ann", "bob", "dora")]
    assert await _mails(*addresses) == []  # nothing is written in the request
    jobs = [name for name, _ in held.held]
    assert jobs == ["mail_campaign_invitations"]
    args = held.held[0][1]
    await held.run()
    # The job run again (a re-relay) mails nobody twice.
    await REGISTRY["mail_campaign_invitations"]({}, *args)

    mails = {mail["to_address"]: mail for mail in await _mails(*addresses)}
    assert sorted(mails) == [f"ann-{tag}@example.org", f"bob-{tag}@example.org"]
    bob, ann_mail = mails[f"bob-{tag}@example.org"], mails[f"ann-{tag}@example.org"]
    assert bob["subject"] == f"{tenant_a.owner_ctx.tenant.name} invites you to a test"
    assert "Hello Bob Baker" in bob["body_text"]
    assert f"/c/{campaign.code}" in bob["body_text"]
    assert "Digital basics" in bob["body_text"]
    assert "vous invite" in ann_mail["subject"]  # her account's language
    assert f"/c/{campaign.code}" in ann_mail["body_text"]

    after = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/invite")
    assert "The invitations are on their way" in after.text
    assert "This invitation mails 0 learners." in after.text
    # Inviting again invites nobody new.
    held.held.clear()
    await _invite(browser, tenant_a, campaign)
    assert held.held == []


async def test_a_group_only_and_the_campaigns_first_language(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, locales=("fr", "en"))
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    counted = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/invite?group=Brest")
    assert "This invitation mails 1 learner." in counted.text
    await _invite(browser, tenant_a, campaign, group="Brest")
    await held.run()
    mails = await _mails(*(f"{n}-{tag}@example.org" for n in ("ann", "bob", "dora")))
    assert [m["to_address"] for m in mails] == [f"bob-{tag}@example.org"]
    assert "vous invite" in mails[0]["subject"]  # no account: the campaign's first language


async def test_a_draft_campaign_and_an_unknown_group_are_refused(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    draft = await make_campaign(tenant_a, draft=True)
    open_one = await make_campaign(tenant_a)
    await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    response = await _invite(browser, tenant_a, draft)
    assert response.status_code == 303
    page = await browser.get(response.headers["location"])
    assert "Open the campaign before inviting learners" in page.text
    response = await _invite(browser, tenant_a, open_one, group="Nowhere")
    page = await browser.get(response.headers["location"])
    assert "No learner is in this group." in page.text
    response = await _invite(browser, tenant_a, open_one, reminders=["5"])
    page = await browser.get(response.headers["location"])
    assert "Choose reminders among the days offered." in page.text
    assert held.held == []
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM campaign_invitation WHERE tenant_id = $1", tenant_a.id
        )
    assert rows[0]["n"] == 0


async def test_reminders_go_once_each_and_never_to_those_who_finished(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, ids = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign)
    await held.run()
    ann, bob = f"ann-{tag}@example.org", f"bob-{tag}@example.org"
    remind = REGISTRY["send_invitation_reminders"]

    await remind({})  # too early: nothing
    assert len(await _mails(ann, bob)) == 2

    await _age_invitations(tenant_a, 4)
    await _finish(tenant_a, campaign, ids["Bob"])  # Bob finished: never reminded
    await remind({})
    await remind({})  # run twice: one mail
    reminders = [m for m in await _mails(ann, bob) if m["subject"].startswith("Reminder")]
    assert [m["to_address"] for m in reminders] == [ann]
    assert f"/c/{campaign.code}" in reminders[0]["body_text"]

    await _age_invitations(tenant_a, 8)  # the day-7 reminder, once
    await remind({})
    await remind({})
    reminders = [m for m in await _mails(ann, bob) if m["subject"].startswith("Reminder")]
    assert [m["to_address"] for m in reminders] == [ann, ann]


async def test_no_reminder_asked_none_sent(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign, reminders=[])
    await held.run()
    await _age_invitations(tenant_a, 30)
    await REGISTRY["send_invitation_reminders"]({})
    mails = await _mails(f"ann-{tag}@example.org")
    assert [m["subject"].startswith("Reminder") for m in mails] == [False]


async def test_the_participant_page_from_the_table(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",), external_id_label="Staff number")
    _, ids = await _learners(tenant_a)
    participation = await _finish(tenant_a, campaign, ids["Dora"])
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign)
    await held.run()
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.member)  # every member reads it
    table = await browser.get(base)
    assert f'href="{base}/participants/{participation}"' in table.text
    assert f'href="{base}/invite"' not in table.text  # a plain member does not invite
    page = await browser.get(f"{base}/participants/{participation}")
    assert page.status_code == 200
    text = page.text
    for shown in ("Dora Done", "E-4", "Staff number", "1.1", "<td>4</td>"):
        assert shown in text
    assert "Shared" in text
    assert "0 questions answered" in text
    assert "Global level: 3, score: 42." in text
    # Dora was imported before the invitation but had finished: she was not invited.
    assert "was not invited by mail" in text
    refused = await browser.post(f"{base}/invite", {"reminders": ["3"]}, page=base)
    assert refused.status_code == 403


async def test_an_invited_participant_shows_the_mails_sent(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    _, ids = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign)
    await held.run()
    await _age_invitations(tenant_a, 4)
    await REGISTRY["send_invitation_reminders"]({})
    page = await _started_participant_page(browser, tenant_a, campaign, ids["Ann"])
    assert "Invitation sent on" in page.text
    assert "3 days after the invitation" in page.text
    assert "In progress" in page.text
    assert "The participant has not finished the test yet." in page.text


@pytest.mark.parametrize("path", ["invite", "participants/{participation}"])
async def test_another_organizations_campaign_is_a_404(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue, path: str
) -> None:
    campaign = await make_campaign(tenant_a)
    _, ids = await _learners(tenant_a)
    participation = await _finish(tenant_a, campaign, ids["Dora"])
    target = path.format(participation=participation)
    await browser.login(tenant_b.owner)
    own = f"/o/{tenant_b.slug}/campaigns/{campaign.id}/{target}"
    assert (await browser.get(own)).status_code == 404
    theirs = f"/o/{tenant_a.slug}/campaigns/{campaign.id}/{target}"
    assert (await browser.get(theirs)).status_code in (403, 404)
    if path == "invite":
        response = await browser.post(
            own, {"reminders": ["3"]}, page=f"/o/{tenant_b.slug}/campaigns"
        )
        assert response.status_code == 404
        assert held.held == []
    # Tenant B's own campaign with tenant A's participation id: 404 too.
    mine = await make_campaign(tenant_b)
    response = await browser.get(
        f"/o/{tenant_b.slug}/campaigns/{mine.id}/participants/{participation}"
    )
    assert response.status_code == 404


async def test_two_reminder_runs_at_once_mail_each_reminder_day_once(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    # arq's cron (run_at_startup, a job id per worker) can start the sweep twice at once: the
    # second run, blocked while the first writes, must not mail the same day again.
    from campaigns.invitations import _remind_tenant
    from core.database import SystemScope, tenant_transaction
    from core.ratelimit import PROCESS_LIMITER

    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign, reminders=["3"])
    await held.run()
    await _age_invitations(tenant_a, 4)
    first_wrote, release = asyncio.Event(), asyncio.Event()

    async def first() -> int:
        async with tenant_transaction(SystemScope(tenant_a.id)):
            sent = await _remind_tenant(tenant_a.id, PROCESS_LIMITER)
            first_wrote.set()
            await release.wait()  # hold the transaction open while the second run starts
        return sent

    async def second() -> int:
        await first_wrote.wait()
        async with tenant_transaction(SystemScope(tenant_a.id)):
            return await _remind_tenant(tenant_a.id, PROCESS_LIMITER)

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await first_wrote.wait()
    await asyncio.sleep(0.5)  # the second run is now waiting on the first
    release.set()
    assert sorted(await asyncio.gather(one, two)) == [0, 3]
    ann = f"ann-{tag}@example.org"
    reminders = [m for m in await _mails(ann) if m["subject"].startswith("Reminder")]
    assert len(reminders) == 1
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT reminded_days, reminded_at FROM campaign_invitation WHERE tenant_id = $1",
            tenant_a.id,
        )
    assert {tuple(row["reminded_days"]) for row in rows} == {(3,)}
    assert {len(row["reminded_at"]) for row in rows} == {1}


async def test_two_reminder_days_due_at_once_make_one_mail_and_both_show_as_sent(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    # The worker was down past both days: one mail, and each day gets its moment, so the
    # participant page lists both and promises none still to come.
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, ids = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign)
    await held.run()
    await _age_invitations(tenant_a, 8)
    await REGISTRY["send_invitation_reminders"]({})
    ann = f"ann-{tag}@example.org"
    assert [m["subject"].startswith("Reminder") for m in await _mails(ann)] == [False, True]
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            """SELECT reminded_days, cardinality(reminded_at) AS moments
               FROM campaign_invitation WHERE tenant_id = $1 AND learner_id = $2""",
            tenant_a.id,
            ids["Ann"],
        )
    assert (rows[0]["reminded_days"], rows[0]["moments"]) == ([3, 7], 2)
    page = await _started_participant_page(browser, tenant_a, campaign, ids["Ann"])
    assert "3 days after the invitation" in page.text
    assert "7 days after the invitation" in page.text
    assert "Reminders still to come" not in page.text


@pytest.mark.parametrize("ended", ["closed", "archived", "past its end"])
async def test_a_campaign_closed_before_the_job_runs_mails_nobody(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue, ended: str
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign)
    change = (
        "closes_at = now() - interval '1 minute'"
        if ended == "past its end"
        else f"status = '{ended}'"
    )
    async with as_tenant(tenant_a.id):
        await database.execute(
            f"UPDATE campaign SET {change} WHERE tenant_id = $1 AND id = $2",  # noqa: S608
            tenant_a.id,
            campaign.id,
        )
    await held.run()  # the job, after the campaign closed: its link is dead
    assert await _mails(f"ann-{tag}@example.org", f"bob-{tag}@example.org") == []
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM campaign_invitation WHERE tenant_id = $1 "
            "AND mailed_at IS NOT NULL",
            tenant_a.id,
        )
    assert rows[0]["n"] == 0


async def test_who_finished_under_an_unverified_account_of_the_address_is_not_invited(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    # Ann finished the test under an account of her address that was not verified when it
    # started (so it has a learner of its own): the form counts her as finished, the
    # invitation skips her, as the reminders do.
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    own_learner = uuid4()
    async with as_tenant(tenant_a.id):
        await database.execute(
            "INSERT INTO learner (tenant_id, id, name, email) VALUES ($1, $2, 'Ann', $3)",
            tenant_a.id,
            own_learner,
            f"ANN-{tag}@example.org",
        )
    await _finish(tenant_a, campaign, own_learner)
    await browser.login(tenant_a.owner)
    form = await browser.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/invite")
    assert "<dt>Finished the campaign</dt><dd>2</dd>" in form.text  # Ann, and her account
    assert "This invitation mails 2 learners." in form.text  # Bob and Dora
    await _invite(browser, tenant_a, campaign)
    await held.run()
    ann, bob = f"ann-{tag}@example.org", f"bob-{tag}@example.org"
    assert [m["to_address"] for m in await _mails(ann, bob)] == [bob]


@pytest.fixture
async def redis_limiter(settings: Settings) -> AsyncIterator[RedisRateLimiter]:
    """The web processes' limiter (the app's, on `REDIS_URL`), for a test to fill."""
    if not settings.redis_url:
        pytest.skip("needs REDIS_URL, as the web processes and the worker share it")
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    yield RedisRateLimiter(redis)
    await redis.aclose()


async def test_invitations_over_the_daily_cap_are_refused_with_a_429(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue, redis_limiter: RedisRateLimiter
) -> None:
    # A trial organization may mail 200 a day: 198 are gone, the 3 learners do not fit.
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    key = quota_key(tenant_a.id)
    await redis_limiter.hit(key, QUOTA_WINDOW_SECONDS, 198)
    await browser.login(tenant_a.owner)
    refused = await _invite(browser, tenant_a, campaign)
    assert refused.status_code == 303
    page = await browser.get(refused.headers["location"])
    assert page.status_code == 429
    assert (
        "Your organization may send 200 invitation and reminder mails a day and has 2 left "
        "today: this invitation would send 3." in page.text
    )
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM campaign_invitation WHERE tenant_id = $1", tenant_a.id
        )
    assert rows[0]["n"] == 0
    assert await redis_limiter.count(key) == 198  # the refused ones are given back
    # In the person's language: a French admin is refused in French.
    french_admin = await make_user("Fanny Admin", locale="fr")
    await add_member(tenant_a.owner_ctx, french_admin, "admin")
    await browser.login(french_admin)
    again = await _invite(browser, tenant_a, campaign)
    french = await browser.get(again.headers["location"])
    assert french.status_code == 429
    assert "il lui en reste 2 aujourd’hui\u00a0: cette invitation en enverrait 3" in french.text
    await _invite(browser, tenant_a, campaign, group="Brest")  # Bob alone fits
    await held.run()
    assert [m["to_address"] for m in await _mails(f"bob-{tag}@example.org")] == [
        f"bob-{tag}@example.org"
    ]
    assert await redis_limiter.count(key) == 199


async def test_reminders_over_the_daily_cap_wait(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue, redis_limiter: RedisRateLimiter
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    tag, _ = await _learners(tenant_a)
    await browser.login(tenant_a.owner)
    await _invite(browser, tenant_a, campaign, reminders=["3"])
    await held.run()
    await _age_invitations(tenant_a, 4)
    key = quota_key(tenant_a.id)
    await redis_limiter.hit(key, QUOTA_WINDOW_SECONDS, 200 - 3 - 1)  # room for one more
    remind = REGISTRY["send_invitation_reminders"]
    await remind({"redis": redis_limiter.redis})  # arq hands the worker its Redis
    addresses = [f"{name}-{tag}@example.org" for name in ("ann", "bob", "dora")]
    reminders = [m for m in await _mails(*addresses) if m["subject"].startswith("Reminder")]
    assert len(reminders) == 1
    assert await redis_limiter.count(key) == 200
    await remind({"redis": redis_limiter.redis})  # still full: the others wait
    reminders = [m for m in await _mails(*addresses) if m["subject"].startswith("Reminder")]
    assert len(reminders) == 1
    await redis_limiter.reset(key)  # the next day
    await remind({"redis": redis_limiter.redis})
    reminders = [m for m in await _mails(*addresses) if m["subject"].startswith("Reminder")]
    assert len(reminders) == 3
