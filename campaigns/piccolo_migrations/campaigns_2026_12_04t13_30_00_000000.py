"""Campaign invitations and their reminders (issue 14, gap 2).

One row per learner invited to a campaign: who invited them and when, when the invitation
mail was queued (`mailed_at`, set by the job that writes the mails, so a job run twice mails
once), and the reminders asked for (`reminder_days`: days after the invitation) beside those
already sent (`reminded_days`, with `reminded_at` the moment each reminder mail was queued).
A learner is invited once per campaign (the unique key): inviting again skips them.

Tenant-owned: composite primary key and foreign keys, forced row-level security; Citus
distributes it by `tenant_id`, colocated with the campaign and learner tables.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-04T13:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "campaign invitations and reminders"

SQL = f"""
CREATE TABLE campaign_invitation (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    learner_id uuid NOT NULL,
    invited_by uuid,
    invited_at timestamptz NOT NULL DEFAULT now(),
    mailed_at timestamptz,
    reminder_days integer[] NOT NULL DEFAULT '{{}}'
        CHECK (cardinality(reminder_days) <= 5 AND 1 <= ALL (reminder_days)
               AND 60 >= ALL (reminder_days)),
    reminded_days integer[] NOT NULL DEFAULT '{{}}',
    reminded_at timestamptz[] NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, campaign_id, learner_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaign (tenant_id, id),
    FOREIGN KEY (tenant_id, learner_id) REFERENCES learner (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_invitation_learner ON campaign_invitation (tenant_id, learner_id);
{tenant_table("campaign_invitation")}
"""

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
