"""Problem reports on challenges: stored with the challenge, locale and answer given, only on
challenges of one's own test, one per participant; enough distinct reports withdraw the
challenge from selection everywhere until a content editor reviews it (ADR 0013)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.problem_reports import (
    challenge_triage,
    list_flags,
    mark_reviewed,
    report_problem,
    restore_reported,
    retire,
    retire_reported,
    withdrawn_challenges,
)
from campaigns.problem_reports import (
    forget_withdrawn as forget,
)
from campaigns.service import create_campaign
from campaigns.target_profiles import TargetProfileFields, create_target_profile
from core import database
from core.errors import Forbidden, Invalid, NotFound
from core.settings import get_settings
from engine import Bank
from tenants.context import Actor, StaffContext
from tenants.permissions import staff_permissions_of
from tenants.staff import make_staff
from tests.campaigns.conftest import (
    Participant,
    Simulee,
    make_campaign,
    make_participant,
    right_answer,
    start_a_test,
    take_test,
    wrong_answer,
)
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

#: A campaign over two topics of two competences (six challenges each) that never stops on
#: precision: without a withdrawal its every test serves all twelve, alternating competences.
TOPICS = ("4.1-t1", "1.2-t1")


@pytest.fixture(autouse=True)
async def _no_flag_outlives_its_test(db: str) -> AsyncIterator[None]:
    """Flags are global: each test's are reviewed away, so no other test meets a withdrawn
    challenge or counts this test's reports."""
    yield
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL"""
        )
    forget()


async def _audit(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            """SELECT action, target_id, details FROM audit_event
               WHERE tenant_id = $1 AND action = 'challenge.reported'""",
            tenant.id,
        )


async def _reports(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT * FROM challenge_report WHERE tenant_id = $1 ORDER BY created_at", tenant.id
        )


async def _flag(challenge_id: str) -> dict[str, Any]:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT * FROM challenge_flag WHERE challenge_id = $1", challenge_id
        )
    return rows[0]


async def _editor() -> Any:
    person = await make_user("Cleo Editor")
    await make_staff(person.id, "content_editor")
    return person.id


async def _topic_campaign(tenant: TenantFixture) -> Campaign:
    profile = await create_target_profile(
        tenant.owner_ctx,
        TargetProfileFields(name="Two topics", competences=["4.1", "1.2"], tubes=list(TOPICS)),
    )
    campaign = await create_campaign(
        tenant.owner_ctx, CampaignFields(name="Two topics", target_profile_id=profile.id)
    )
    # Test set-up the service does not offer: no stop before the pool is exhausted.
    async with as_tenant(tenant.id):
        await database.execute(
            """UPDATE campaign SET profile_snapshot = jsonb_set(profile_snapshot,
                   '{engine,min_length}', '30')
               WHERE tenant_id = $1 AND id = $2""",
            tenant.id,
            campaign.id,
        )
    return campaign


async def _served(person: Participant, campaign: Campaign, bank: Bank) -> list[str]:
    """Take the whole test; the challenges it served, in order."""
    participation = await start_or_resume(person.ctx, campaign.id)
    outcomes = await take_test(person.ctx, participation.id, Simulee(bank, 0.0))
    async with as_tenant(person.ctx.tenant_id):
        rows = await database.fetch(
            """SELECT challenge_id FROM answer WHERE tenant_id = $1 AND participation_id = $2
               ORDER BY position""",
            person.ctx.tenant_id,
            participation.id,
        )
    assert outcomes[-1].completed
    return [row["challenge_id"] for row in rows]


async def _report_when_served(
    person: Participant, campaign: Campaign, challenge_id: str, bank: Bank
) -> Any:
    """Answer until `challenge_id` is the current challenge, then report it."""
    participation = await start_or_resume(person.ctx, campaign.id)
    view = await current_challenge(person.ctx, participation.id)
    while view is not None and view.challenge_id != challenge_id:
        challenge = bank.challenge_by_id[view.challenge_id]
        view = (
            await answer(person.ctx, participation.id, view.challenge_id, right_answer(challenge))
        ).next_challenge
    assert view is not None, f"{challenge_id} was never served"
    return await report_problem(
        person.ctx, participation.id, challenge_id, "wrong_answer_key", "Looks wrong."
    )


# --- reporting ----------------------------------------------------------------------------


async def test_a_report_is_stored_with_the_challenge_locale_and_answer_in_progress(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id, locale="fr")
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    challenge = test_bank.challenge_by_id[view.challenge_id]
    given = wrong_answer(challenge, "fr")
    outcome = await report_problem(
        paula.ctx, participation.id, view.challenge_id, "unclear_statement", "  Ambiguous.  ", given
    )
    assert (outcome.recorded, outcome.withdrawn) == (True, False)
    [report] = await _reports(tenant_a)
    assert (report["challenge_id"], report["locale"], report["category"], report["comment"]) == (
        view.challenge_id,
        "fr",
        "unclear_statement",
        "Ambiguous.",
    )
    assert json.loads(report["answer"]) == (given if not isinstance(given, list) else sorted(given))
    assert (report["answer_submitted"], report["answer_correct"]) == (False, False)
    assert report["participation_id"] == participation.id
    flag = await _flag(view.challenge_id)
    assert (flag["status"], flag["recent_reports"]) == ("open", 1)
    [event] = await _audit(tenant_a)
    assert event["target_id"] == view.challenge_id
    assert json.loads(event["details"])["category"] == "unclear_statement"
    assert "Ambiguous." not in event["details"]  # the comment stays with the report
    assert await _reports(tenant_b) == []
    # The report changed nothing of the test: the same challenge is still to answer.
    again = await current_challenge(paula.ctx, participation.id)
    assert again is not None
    assert again.challenge_id == view.challenge_id


async def test_an_answered_challenge_is_reported_with_the_recorded_answer(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    challenge = test_bank.challenge_by_id[view.challenge_id]
    await answer(paula.ctx, participation.id, view.challenge_id, right_answer(challenge))
    # What the form sends along is ignored: the recorded answer is the one given.
    await report_problem(
        paula.ctx, participation.id, view.challenge_id, "broken_media", "", "something else"
    )
    [report] = await _reports(tenant_a)
    expected = right_answer(challenge)
    assert json.loads(report["answer"]) == (
        sorted(expected) if isinstance(expected, list) else expected
    )
    assert (report["answer_submitted"], report["answer_correct"], report["locale"]) == (
        True,
        True,
        "en",
    )


async def test_a_report_without_an_answer_in_progress_keeps_none(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    await report_problem(paula.ctx, participation.id, view.challenge_id, "accessibility")
    [report] = await _reports(tenant_a)
    assert (report["answer"], report["answer_submitted"], report["comment"]) == (None, False, "")


async def test_only_a_challenge_served_in_this_participation_can_be_reported(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    never_shown = next(c.id for c in test_bank.challenges if c.id != view.challenge_id)
    for challenge_id in (never_shown, "no-such-challenge", ""):
        with pytest.raises(NotFound):
            await report_problem(paula.ctx, participation.id, challenge_id, "unclear_statement")
    assert await _reports(tenant_a) == []


async def test_another_persons_or_tenants_participation_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    peter = await make_participant(tenant_a, "Peter Other")
    # Paula herself, acting in tenant B: her tenant-A participation does not exist there.
    paula_in_b = participant_context(tenant_b.owner_ctx.tenant, paula.ctx.actor)
    for ctx in (peter.ctx, paula_in_b):
        with pytest.raises(NotFound):
            await report_problem(ctx, participation.id, view.challenge_id, "unclear_statement")
    with pytest.raises(NotFound):
        await report_problem(paula.ctx, uuid4(), view.challenge_id, "unclear_statement")
    with pytest.raises(NotFound):
        await report_problem(paula.ctx, "not-a-uuid", view.challenge_id, "unclear_statement")
    assert await _reports(tenant_a) == []
    assert await _reports(tenant_b) == []


async def test_the_category_is_required_and_the_comment_capped(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    for category in (None, "", "rude_question"):
        with pytest.raises(Invalid) as refused:
            await report_problem(paula.ctx, participation.id, view.challenge_id, category)
        assert refused.value.field == "category"
    with pytest.raises(Invalid) as too_long:
        await report_problem(
            paula.ctx, participation.id, view.challenge_id, "unclear_statement", "x" * 1001
        )
    assert too_long.value.field == "comment"
    await report_problem(
        paula.ctx, participation.id, view.challenge_id, "unclear_statement", "x" * 1000
    )
    assert len(await _reports(tenant_a)) == 1


async def test_a_second_report_by_the_same_participant_counts_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    first = await report_problem(paula.ctx, participation.id, view.challenge_id, "broken_media")
    second = await report_problem(
        paula.ctx, participation.id, view.challenge_id, "unclear_statement", "Again!"
    )
    assert (first.recorded, second.recorded) == (True, False)
    [report] = await _reports(tenant_a)
    assert report["category"] == "broken_media"
    assert (await _flag(view.challenge_id))["recent_reports"] == 1
    assert len(await _audit(tenant_a)) == 1


# --- withdrawal and triage ----------------------------------------------------------------


async def test_enough_distinct_reports_withdraw_a_challenge_until_it_is_reviewed(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    threshold = get_settings().report_threshold
    assert threshold == 3
    campaigns = {tenant_a.slug: await _topic_campaign(tenant_a)}
    campaigns[tenant_b.slug] = await _topic_campaign(tenant_b)
    # The reporters: two in A, one in B; the first one's first challenge is the culprit.
    reporters = [
        await make_participant(tenant_a, "Ann One"),
        await make_participant(tenant_b, "Bob Two"),
        await make_participant(tenant_a, "Cid Three"),
    ]
    first = await start_or_resume(reporters[0].ctx, campaigns[tenant_a.slug].id)
    view = await current_challenge(reporters[0].ctx, first.id)
    assert view is not None
    culprit = view.challenge_id
    outcomes = []
    for person in reporters:
        campaign = campaigns[person.ctx.tenant.slug]
        outcomes.append(await _report_when_served(person, campaign, culprit, test_bank))
    assert [o.withdrawn for o in outcomes] == [False, False, True]
    flag = await _flag(culprit)
    assert (flag["status"], flag["recent_reports"]) == ("withdrawn", 3)
    assert flag["withdrawn_at"] is not None
    assert culprit in await withdrawn_challenges()

    # A new test, through the service, never serves it; every other challenge of the topic is.
    pool = {c.id for c in test_bank.challenges for t in TOPICS if c.id.startswith(f"ch-{t}-")}
    dana = await make_participant(tenant_a, "Dana Four")
    served = await _served(dana, campaigns[tenant_a.slug], test_bank)
    assert len(pool) == 12
    assert culprit not in served
    assert set(served) < pool
    assert len(served) >= 10  # the rest of the pool, but for the alternation's last step

    # A content editor sees it first, with what was reported, but nobody's name.
    editor = await _editor()
    [listed, *_] = await list_flags(editor)
    assert (listed.challenge_id, listed.status, listed.recent_reports) == (culprit, "withdrawn", 3)
    assert listed.categories == {"wrong_answer_key": 3}
    assert listed.locales == {"en": 3}
    assert [s.comment for s in listed.samples] == ["Looks wrong."] * 3
    assert all(s.answer_submitted is False for s in listed.samples)

    # Reviewed: it is selected again (this process at once), and its count starts afresh.
    assert await mark_reviewed(editor, culprit) == "reviewed"
    assert culprit not in await withdrawn_challenges()
    flag = await _flag(culprit)
    assert (flag["status"], flag["recent_reports"], flag["reviewed_by"]) == ("reviewed", 0, editor)
    erin = await make_participant(tenant_b, "Erin Five")
    assert set(await _served(erin, campaigns[tenant_b.slug], test_bank)) == pool
    [listed, *_] = await list_flags(editor, "reviewed")
    assert (listed.categories, listed.samples) == ({}, ())


async def test_a_withdrawn_challenge_already_shown_can_still_be_answered(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    async with database.global_transaction():
        await database.execute(
            """INSERT INTO challenge_flag (challenge_id, status, withdrawn_at)
               VALUES ($1, 'withdrawn', now())
               ON CONFLICT (challenge_id) DO UPDATE SET status = 'withdrawn',
                   withdrawn_at = EXCLUDED.withdrawn_at""",
            view.challenge_id,
        )
    forget()
    challenge = test_bank.challenge_by_id[view.challenge_id]
    outcome = await answer(paula.ctx, participation.id, view.challenge_id, right_answer(challenge))
    assert outcome.correct
    assert outcome.next_challenge is not None
    assert outcome.next_challenge.challenge_id != view.challenge_id


async def test_a_retired_challenge_stays_out_until_reviewed(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    await report_problem(paula.ctx, participation.id, view.challenge_id, "wrong_answer_key")
    assert view.challenge_id not in await withdrawn_challenges()
    editor = await _editor()
    assert await retire(editor, view.challenge_id) == "retired"
    assert view.challenge_id in await withdrawn_challenges()
    assert await mark_reviewed(editor, view.challenge_id) == "reviewed"
    assert view.challenge_id not in await withdrawn_challenges()
    with pytest.raises(NotFound):
        await retire(editor, "never-reported")


async def _staff(role: str = "content_editor") -> StaffContext:
    person = await make_user(f"Stan {role}")
    await make_staff(person.id, role)
    return StaffContext(
        actor=Actor(kind="staff", user_id=person.id),
        role=role,
        permissions=staff_permissions_of(role),
    )


async def test_a_challenge_nobody_reported_is_retired_from_the_back_office_and_never_served(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await _topic_campaign(tenant_a)
    pool = {c.id for c in test_bank.challenges for t in TOPICS if c.id.startswith(f"ch-{t}-")}
    async with database.global_transaction():
        flagged = {r["challenge_id"] for r in await database.fetch("SELECT * FROM challenge_flag")}
    culprit = min(pool - flagged)
    editor = await _staff()
    assert await challenge_triage(editor, culprit) is None
    with pytest.raises(Invalid):  # a reason is required, and nothing is made without one
        await retire_reported(editor, culprit, "")
    assert await challenge_triage(editor, culprit) is None

    assert await retire_reported(editor, culprit, "Outdated") == "retired"
    flag = await _flag(culprit)
    assert (flag["status"], flag["recent_reports"]) == ("retired", 0)
    assert (flag["first_reported_at"], flag["last_reported_at"]) == (None, None)
    triage = await challenge_triage(editor, culprit)
    assert triage is not None
    assert (triage.status, triage.served) == ("retired", False)
    assert triage.retired_at == flag["retired_at"]
    # Nobody's test serves it now, in any tenant; every other challenge of the topics is.
    dana = await make_participant(tenant_a, "Dana Four")
    served = await _served(dana, campaign, test_bank)
    assert culprit not in served
    assert set(served) < pool
    assert len(served) >= 10
    # Listed with the retired ones, without report dates (and last).
    assert editor.user_id is not None
    retired = await list_flags(editor.user_id, "retired")
    [listed] = [f for f in retired if f.challenge_id == culprit]
    assert (listed.first_reported_at, listed.recent_reports) == (None, 0)

    # Restored, it is served again; a report then gives it its first report date.
    assert await restore_reported(editor, culprit, "Still valid") == "reviewed"
    assert culprit not in await withdrawn_challenges()
    triage = await challenge_triage(editor, culprit)
    assert triage is not None
    assert (triage.status, triage.served) == ("reviewed", True)
    erin = await make_participant(tenant_a, "Erin Five")
    outcome = await _report_when_served(erin, campaign, culprit, test_bank)
    assert outcome.recorded
    flag = await _flag(culprit)
    assert flag["first_reported_at"] is not None
    assert flag["first_reported_at"] == flag["last_reported_at"]


async def test_only_a_challenge_of_the_bank_or_a_reported_one_is_retired(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    editor = await _staff()
    with pytest.raises(NotFound):
        await retire_reported(editor, "no-such-challenge", "Outdated")
    async with database.global_transaction():
        assert not await database.fetch(
            "SELECT 1 FROM challenge_flag WHERE challenge_id = 'no-such-challenge'"
        )
    # A reported challenge the bank in use no longer holds (frozen campaigns may serve it)
    # is still retired from the queue.
    async with database.global_transaction():
        await database.execute(
            """INSERT INTO challenge_flag (challenge_id) VALUES ('ch-removed-001')
               ON CONFLICT (challenge_id) DO NOTHING"""
        )
    assert await retire_reported(editor, "ch-removed-001", "Removed from the bank") == "retired"


async def test_only_content_editors_retire_a_challenge_of_the_bank(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    challenge_id = test_bank.challenges[0].id
    before = await withdrawn_challenges()
    for role in ("account_manager", "support"):
        staff = await _staff(role)
        with pytest.raises(Forbidden):
            await retire_reported(staff, challenge_id, "Not my job")
        with pytest.raises(Forbidden):
            await challenge_triage(staff, challenge_id)
    # A content editor's context for someone whose staff role was taken away: refused too.
    editor = await _staff()
    async with database.global_transaction():
        await database.execute(
            "UPDATE staff_member SET disabled_at = now() WHERE user_id = $1", editor.user_id
        )
    with pytest.raises(Forbidden):
        await retire_reported(editor, challenge_id, "Disabled")
    forget()
    assert await withdrawn_challenges() == before


async def test_only_content_editors_triage(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    await report_problem(paula.ctx, participation.id, view.challenge_id, "unclear_statement", "?")
    manager = await make_user("Max Manager")
    await make_staff(manager.id, "account_manager")
    for person in (manager.id, tenant_a.owner.id, paula.user_id):
        with pytest.raises(Forbidden):
            await list_flags(person)
        with pytest.raises(Forbidden):
            await mark_reviewed(person, view.challenge_id)
        with pytest.raises(Forbidden):
            await retire(person, view.challenge_id)
    # The database agrees: outside the owner's `triage_report_samples` (which `list_flags`
    # calls once the staff role is checked), no tenant's reports are readable, whoever asks,
    # with or without the setting that once opened them (ADR 0024).
    editor = await _editor()
    for person in (manager.id, tenant_a.owner.id, paula.user_id, editor):
        async with database.global_transaction(user_id=person):
            assert await database.fetch("SELECT 1 FROM challenge_report") == []
            await database.execute("SET LOCAL jalon.triage = 'challenge_report'")
            assert await database.fetch("SELECT 1 FROM challenge_report") == []
    [flag] = [f for f in await list_flags(editor) if f.challenge_id == view.challenge_id]
    assert [sample.comment for sample in flag.samples] == ["?"]
    # Inside a tenant's transaction the editor's policy does not apply: tenant B sees nothing.
    async with as_tenant(tenant_b.id, editor):
        assert await database.fetch("SELECT 1 FROM challenge_report") == []
    with pytest.raises(Invalid):
        await list_flags(editor, "lost")


async def test_the_withdrawn_set_is_cached_without_a_query_per_answer(
    tenant_a: TenantFixture, tenant_b: TenantFixture, statements: list[str]
) -> None:
    await withdrawn_challenges()
    statements.clear()
    for _ in range(5):
        await withdrawn_challenges()
    assert statements == []
    await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
    assert statements == []
    forget()
    await withdrawn_challenges()
    await asyncio.sleep(0)
    assert any("challenge_flag" in s for s in statements)


async def test_reports_from_unverified_accounts_are_kept_but_withdraw_nothing(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    from campaigns.participation.landing import participant_context
    from tenants.accounts import create_user
    from tenants.context import Actor

    async with database.global_transaction():
        started = (await database.fetch("SELECT now() AS t"))[0]["t"]
    campaign = await make_campaign(tenant_a)
    threshold = get_settings().report_threshold
    reported = None
    for i in range(threshold + 1):
        # accounts made on the spot, with addresses nobody confirmed
        user = await create_user(
            f"made-up-{i}-{uuid4().hex[:6]}@example.org", "X", "pw-12345678", "en"
        )
        ctx = participant_context(
            tenant_a.owner_ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email)
        )
        participation = await start_or_resume(ctx, campaign.id)
        view = await current_challenge(ctx, participation.id)
        assert view is not None
        reported = reported or view.challenge_id
        async with as_tenant(tenant_a.id):  # set-up: all are shown the same one
            await database.execute(
                "UPDATE assessment SET current_challenge_id = $3 "
                "WHERE tenant_id = $1 AND participation_id = $2",
                tenant_a.id,
                participation.id,
                reported,
            )
        outcome = await report_problem(
            ctx, participation.id, reported, "wrong_answer_key", "First line.\nSecond line."
        )
        assert (outcome.recorded, outcome.withdrawn) == (True, False)
    assert reported is not None
    reports = await _reports(tenant_a)
    assert len(reports) == threshold + 1
    assert reports[0]["comment"] == "First line.\nSecond line."  # a text box keeps its lines
    assert reported not in await withdrawn_challenges()
    async with database.global_transaction():
        counted = await database.fetch(
            "SELECT 1 FROM challenge_flag_event WHERE challenge_id = $1 AND reported_at >= $2",
            reported,
            started,
        )
    assert counted == []  # (a flag row may remain from earlier tests: flags are global)


async def test_a_disabled_content_editor_triages_nothing(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    await report_problem(paula.ctx, participation.id, view.challenge_id, "wrong_answer_key")
    editor = await _editor()
    async with database.global_transaction():
        await database.execute(
            "UPDATE staff_member SET disabled_at = now() WHERE user_id = $1", editor
        )
    with pytest.raises(Forbidden):
        await list_flags(editor)
    with pytest.raises(Forbidden):
        await retire(editor, view.challenge_id)
    assert view.challenge_id not in await withdrawn_challenges()
