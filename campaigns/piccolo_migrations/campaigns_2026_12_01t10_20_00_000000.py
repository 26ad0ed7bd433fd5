"""Problem reports on challenges (ADR 0013).

`challenge_report` is tenant-owned: a participant's report, made inside a campaign, with the
locale, the answer given and the comment. One per learner and challenge.

`challenge_flag` and `challenge_flag_event` are global (the bank is shared): per challenge,
what content editors triage and whether it is withdrawn from selection, and one anonymous
event per report (challenge, locale, category, time) to count recent reports across tenants.
They hold no personal data and reference no tenant-owned row.

Content editors read reports across tenants through the SELECT-only `content_triage` policy:
only while no tenant is set, and only when the acting user (`jalon.user_id`) is a content
editor or superadmin in `staff_member` — the database checks who asks, not only the code.
"""

from core.schema import append_only, global_table, sql_migration, tenant_table

ID = "2026-12-01T10:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "problem reports on challenges"

_CURRENT_USER = "nullif(current_setting('jalon.user_id', true), '')::uuid"
_NO_TENANT = "nullif(current_setting('jalon.tenant_id', true), '') IS NULL"
_CATEGORIES = "('unclear_statement', 'wrong_answer_key', 'broken_media', 'accessibility')"

SQL = f"""
CREATE TABLE challenge_report (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    participation_id uuid NOT NULL,
    learner_id uuid NOT NULL,
    challenge_id text NOT NULL CHECK (length(challenge_id) BETWEEN 1 AND 200),
    locale text NOT NULL CHECK (length(locale) BETWEEN 2 AND 16),
    category text NOT NULL CHECK (category IN {_CATEGORIES}),
    comment text NOT NULL DEFAULT '' CHECK (length(comment) <= 1000),
    answer jsonb,
    answer_submitted boolean NOT NULL DEFAULT false,
    answer_correct boolean,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, learner_id, challenge_id),
    FOREIGN KEY (tenant_id, participation_id) REFERENCES participation (tenant_id, id),
    FOREIGN KEY (tenant_id, learner_id) REFERENCES learner (tenant_id, id)
);
CREATE INDEX challenge_report_challenge
    ON challenge_report (tenant_id, challenge_id, created_at DESC);
{tenant_table("challenge_report", "SELECT, INSERT")}
CREATE POLICY content_triage ON challenge_report FOR SELECT USING ({_NO_TENANT} AND EXISTS (
    SELECT 1 FROM staff_member s WHERE s.user_id = {_CURRENT_USER}
        AND s.role IN ('content_editor', 'superadmin')));

CREATE TABLE challenge_flag (
    challenge_id text PRIMARY KEY CHECK (length(challenge_id) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'withdrawn', 'reviewed', 'retired')),
    recent_reports integer NOT NULL DEFAULT 0 CHECK (recent_reports >= 0),
    first_reported_at timestamptz NOT NULL DEFAULT now(),
    last_reported_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    reviewed_at timestamptz,
    reviewed_by uuid REFERENCES user_account (id),
    retired_at timestamptz,
    CHECK (status <> 'withdrawn' OR withdrawn_at IS NOT NULL),
    CHECK ((status = 'retired') = (retired_at IS NOT NULL))
);
CREATE INDEX challenge_flag_out ON challenge_flag (challenge_id)
    WHERE status IN ('withdrawn', 'retired');
{global_table("challenge_flag", "SELECT, INSERT, UPDATE")}

CREATE TABLE challenge_flag_event (
    id uuid PRIMARY KEY,
    challenge_id text NOT NULL REFERENCES challenge_flag (challenge_id),
    locale text NOT NULL CHECK (length(locale) BETWEEN 2 AND 16),
    category text NOT NULL CHECK (category IN {_CATEGORIES}),
    reported_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX challenge_flag_event_recent ON challenge_flag_event (challenge_id, reported_at);
{global_table("challenge_flag_event", "SELECT, INSERT")}
{append_only("challenge_flag_event")}
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
