"""Target profiles, campaigns and their codes, learners, participations, assessments, answers
and results (ADR 0009).

Hand-written SQL (ADR 0002): tenant-owned tables have the composite primary key
`(tenant_id, id)`, composite foreign keys between them, and forced row-level security.
`campaign_code` is global (a participant's code must find its tenant before any tenant is
set): it references the organization, never a tenant-owned row, and names the column
`organization_id` because it is a routing table, not a tenant's data.
"""

from core.schema import global_table, sql_migration, tenant_table

ID = "2026-11-29T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "campaigns"

_CURRENT_TENANT = "nullif(current_setting('jalon.tenant_id', true), '')::uuid"

SQL = f"""
CREATE TABLE target_profile (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    competences text[] NOT NULL CHECK (cardinality(competences) > 0),
    tubes text[] NOT NULL DEFAULT '{{}}',
    max_levels jsonb NOT NULL DEFAULT '{{}}',
    version integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
{tenant_table("target_profile")}

CREATE TABLE campaign (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type text NOT NULL CHECK (type IN ('assessment', 'profiles_collection')),
    code text NOT NULL CHECK (code ~ '^[A-HJKMNP-Z2-9]{{9}}$'),
    target_profile_id uuid,
    profile_snapshot jsonb NOT NULL,
    bank_version text NOT NULL,
    external_id_label text CHECK (length(external_id_label) BETWEEN 1 AND 100),
    external_id_format text NOT NULL DEFAULT 'text'
        CHECK (external_id_format IN ('text', 'digits', 'email')),
    opens_at timestamptz,
    closes_at timestamptz,
    locales text[] NOT NULL CHECK (cardinality(locales) > 0),
    landing_text text NOT NULL DEFAULT '' CHECK (length(landing_text) <= 5000),
    retake_allowed boolean NOT NULL DEFAULT false,
    retake_delay_days integer NOT NULL DEFAULT 0 CHECK (retake_delay_days BETWEEN 0 AND 3650),
    sso_required boolean NOT NULL DEFAULT false,
    consumes_seat boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'active', 'closed', 'archived')),
    created_by uuid REFERENCES user_account (id),
    duplicated_from uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    archived_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, target_profile_id) REFERENCES target_profile (tenant_id, id),
    CHECK (closes_at IS NULL OR opens_at IS NULL OR closes_at > opens_at)
);
CREATE INDEX campaign_recent ON campaign (tenant_id, created_at DESC, id DESC);
{tenant_table("campaign")}

-- Global: code -> (organization, campaign). No foreign key to campaign (tenant-owned).
-- Readable by anyone (that is its purpose); a row can only be written for the transaction's
-- tenant, and never changed or removed: a code is never reused.
CREATE TABLE campaign_code (
    code text PRIMARY KEY CHECK (code ~ '^[A-HJKMNP-Z2-9]{{9}}$'),
    organization_id uuid NOT NULL REFERENCES organization (id),
    campaign_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, campaign_id)
);
ALTER TABLE campaign_code ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaign_code FORCE ROW LEVEL SECURITY;
CREATE POLICY code_lookup ON campaign_code FOR SELECT USING (true);
CREATE POLICY code_claim ON campaign_code FOR INSERT
    WITH CHECK (organization_id = {_CURRENT_TENANT});
{global_table("campaign_code", "SELECT, INSERT")}

CREATE TABLE learner (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    user_id uuid REFERENCES user_account (id),
    external_id text CHECK (length(external_id) BETWEEN 1 AND 200),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email text CHECK (length(email) BETWEEN 3 AND 254),
    groups text[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX learner_external_id ON learner (tenant_id, external_id)
    WHERE external_id IS NOT NULL;
{tenant_table("learner")}

CREATE TABLE participation (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    learner_id uuid NOT NULL,
    attempt integer NOT NULL CHECK (attempt > 0),
    status text NOT NULL DEFAULT 'started'
        CHECK (status IN ('started', 'completed', 'shared')),
    external_id text CHECK (length(external_id) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    shared_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, campaign_id, learner_id, attempt),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaign (tenant_id, id),
    FOREIGN KEY (tenant_id, learner_id) REFERENCES learner (tenant_id, id),
    CHECK ((status = 'started') = (completed_at IS NULL)),
    CHECK ((status = 'shared') = (shared_at IS NOT NULL))
);
CREATE INDEX participation_learner ON participation (tenant_id, learner_id);
{tenant_table("participation")}

-- The adaptive test of a participation: where it stands. The answers are the truth; this row
-- holds what they imply (next challenge, estimate), so reading the current challenge is one
-- query and a resumed test shows the very same challenge.
CREATE TABLE assessment (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    participation_id uuid NOT NULL,
    locale text NOT NULL,
    seed bigint NOT NULL CHECK (seed >= 0),
    seen_before text[] NOT NULL DEFAULT '{{}}',
    answered integer NOT NULL DEFAULT 0 CHECK (answered >= 0),
    current_challenge_id text,
    current_pretest boolean NOT NULL DEFAULT false,
    theta double precision NOT NULL DEFAULT 0,
    se double precision NOT NULL DEFAULT 1,
    stop_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, participation_id),
    FOREIGN KEY (tenant_id, participation_id) REFERENCES participation (tenant_id, id),
    CHECK ((current_challenge_id IS NULL) = (stop_reason IS NOT NULL))
);
{tenant_table("assessment")}

-- Answers are written once: the runtime role may not change or delete them, and the unique
-- keys refuse a second answer at the same position or to the same challenge.
CREATE TABLE answer (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    participation_id uuid NOT NULL,
    position integer NOT NULL CHECK (position > 0),
    challenge_id text NOT NULL,
    value jsonb,
    correct boolean NOT NULL,
    skipped boolean NOT NULL DEFAULT false,
    pretest boolean NOT NULL DEFAULT false,
    answered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, participation_id, position),
    UNIQUE (tenant_id, participation_id, challenge_id),
    FOREIGN KEY (tenant_id, participation_id) REFERENCES participation (tenant_id, id),
    CHECK (NOT (skipped AND correct)),
    CHECK (skipped = (value IS NULL))
);
{tenant_table("answer", "SELECT, INSERT")}

CREATE TABLE result (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    participation_id uuid NOT NULL,
    theta double precision,
    se double precision,
    level integer NOT NULL CHECK (level BETWEEN 0 AND 8),
    score integer NOT NULL CHECK (score >= 0),
    competences jsonb NOT NULL,
    mastered_skills text[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, participation_id),
    FOREIGN KEY (tenant_id, participation_id) REFERENCES participation (tenant_id, id)
);
{tenant_table("result", "SELECT, INSERT")}
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
