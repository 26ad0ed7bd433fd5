"""How often each challenge of a bank version is served, across every tenant (ADR 0017).

Global and anonymous, like the challenge flags: per bank version, the number of recent tests
(`bank_exposure.tests`) and, per challenge, in how many of them it was answered
(`challenge_exposure.served`). The hourly `refresh_exposure` job rebuilds both from the
tenants' answers; the engine reads them as its exposure ledger, so that a challenge served to
more than a campaign's maximum exposure rate gives way to others.
"""

from core.schema import global_table, sql_migration

ID = "2026-12-01T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "exposure of challenges across tenants"

SQL = f"""
CREATE TABLE bank_exposure (
    bank_version text PRIMARY KEY CHECK (length(bank_version) BETWEEN 1 AND 100),
    tests bigint NOT NULL CHECK (tests >= 0),
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
{global_table("bank_exposure")}
CREATE TABLE challenge_exposure (
    bank_version text NOT NULL REFERENCES bank_exposure (bank_version) ON DELETE CASCADE,
    challenge_id text NOT NULL CHECK (length(challenge_id) BETWEEN 1 AND 100),
    served bigint NOT NULL CHECK (served >= 0),
    PRIMARY KEY (bank_version, challenge_id)
);
{global_table("challenge_exposure")}
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
