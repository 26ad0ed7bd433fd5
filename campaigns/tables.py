"""Piccolo tables of the campaigns package. The schema is the SQL of the migrations (composite
keys, row-level security, checks); these classes mirror it for queries.

Global: CampaignCode (code → organization and campaign, for participants' links),
ChallengeFlag and ChallengeFlagEvent (reported challenges, shared by every tenant), and the
exposure ledger, BankExposure and ChallengeExposure (how often each challenge is served).
Tenant-owned (row-level security on `tenant_id`): TargetProfile, Campaign, Learner,
Participation, Assessment, Answer, Result, ChallengeReport.
"""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    Boolean,
    Bytea,
    DoublePrecision,
    Integer,
    Text,
    Timestamptz,
)
from piccolo.table import Table

from core.database import DB


class TargetProfile(Table, tablename="target_profile", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    description = Text(default="")
    competences = Array(base_column=Text())
    tubes = Array(base_column=Text())
    max_levels = JSONB(default={})
    version = Integer(default=1)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    archived_at = Timestamptz(null=True, default=None)


class Campaign(Table, tablename="campaign", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    type = Text()
    code = Text()
    target_profile_id = UUID(null=True, default=None)
    profile_snapshot = JSONB()
    bank_version = Text()
    external_id_label = Text(null=True, default=None)
    external_id_format = Text(default="text")
    opens_at = Timestamptz(null=True, default=None)
    closes_at = Timestamptz(null=True, default=None)
    locales = Array(base_column=Text())
    landing_text = Text(default="")
    retake_allowed = Boolean(default=False)
    retake_delay_days = Integer(default=0)
    sso_required = Boolean(default=False)
    consumes_seat = Boolean(default=True)
    status = Text(default="draft")
    created_by = UUID(null=True, default=None)
    duplicated_from = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)
    archived_at = Timestamptz(null=True, default=None)


class CampaignCode(Table, tablename="campaign_code", db=DB):
    code = Text(primary_key=True)
    organization_id = UUID()
    campaign_id = UUID()
    created_at = Timestamptz()


class Learner(Table, tablename="learner", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID(null=True, default=None)
    external_id = Text(null=True, default=None)
    name = Text()
    email = Text(null=True, default=None)
    groups = Array(base_column=Text())
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Participation(Table, tablename="participation", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    campaign_id = UUID()
    learner_id = UUID()
    attempt = Integer()
    status = Text(default="started")
    external_id = Text(null=True, default=None)
    created_at = Timestamptz()
    completed_at = Timestamptz(null=True, default=None)
    shared_at = Timestamptz(null=True, default=None)


class Assessment(Table, tablename="assessment", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    participation_id = UUID()
    locale = Text()
    seed = BigInt()
    seen_before = Array(base_column=Text())
    answered = Integer(default=0)
    current_challenge_id = Text(null=True, default=None)
    current_pretest = Boolean(default=False)
    theta = DoublePrecision(default=0.0)
    se = DoublePrecision(default=1.0)
    stop_reason = Text(null=True, default=None)
    created_at = Timestamptz()
    current_shown_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    #: the engine's posterior after the answers so far (`engine.Resume`), for the next answer
    posterior = Bytea(null=True, default=None)


class Answer(Table, tablename="answer", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    participation_id = UUID()
    position = Integer()
    challenge_id = Text()
    value = JSONB(null=True, default=None)
    correct = Boolean()
    skipped = Boolean(default=False)
    pretest = Boolean(default=False)
    answered_at = Timestamptz()


class Result(Table, tablename="result", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    participation_id = UUID()
    theta = DoublePrecision(null=True, default=None)
    se = DoublePrecision(null=True, default=None)
    level = Integer()
    score = Integer()
    competences = JSONB()
    mastered_skills = Array(base_column=Text())
    created_at = Timestamptz()


class ChallengeReport(Table, tablename="challenge_report", db=DB):
    """A participant's report of a problem on a challenge (tenant-owned)."""

    id = UUID(primary_key=True)
    tenant_id = UUID()
    participation_id = UUID()
    learner_id = UUID()
    challenge_id = Text()
    locale = Text()
    category = Text()
    comment = Text(default="")
    answer = JSONB(null=True, default=None)
    answer_submitted = Boolean(default=False)
    answer_correct = Boolean(null=True, default=None)
    created_at = Timestamptz()


class ChallengeFlag(Table, tablename="challenge_flag", db=DB):
    """Global: a challenge's triage state (reported, or retired from its preview), and whether
    selection skips it."""

    challenge_id = Text(primary_key=True)
    status = Text(default="open")
    recent_reports = Integer(default=0)
    #: both null for a challenge retired from its preview before anyone reported it (ADR 0029)
    first_reported_at = Timestamptz(null=True, default=None)
    last_reported_at = Timestamptz(null=True, default=None)
    withdrawn_at = Timestamptz(null=True, default=None)
    reviewed_at = Timestamptz(null=True, default=None)
    reviewed_by = UUID(null=True, default=None)
    retired_at = Timestamptz(null=True, default=None)


class ChallengeFlagEvent(Table, tablename="challenge_flag_event", db=DB):
    """Global and anonymous: one per report, to count recent reports across tenants."""

    id = UUID(primary_key=True)
    challenge_id = Text()
    locale = Text()
    category = Text()
    reported_at = Timestamptz()


class BankExposure(Table, tablename="bank_exposure", db=DB):
    """Global and anonymous: recent tests of a bank version, across tenants (ADR 0017)."""

    bank_version = Text(primary_key=True)
    tests = BigInt()
    refreshed_at = Timestamptz()


class ChallengeExposure(Table, tablename="challenge_exposure", db=DB):
    """Global and anonymous: in how many recent tests a challenge was answered (ADR 0017)."""

    bank_version = Text(primary_key=True)
    challenge_id = Text()
    served = BigInt()
