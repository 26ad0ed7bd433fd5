"""Calibration runs of the challenge bank, and what each found per challenge (issue 12).

Global and anonymous, like the exposure ledger: a content editor launches a run from the
back office; a job reads every tenant's answers to the bank version in use (tenant by
tenant), fits the items with `engine.calibration` and stores, per challenge, how many
answers it had, how many were right, the fitted parameters beside the bank's and the
previous run's, and the fit (infit, outfit). No tenant, no person, no answer is stored: only
counts and parameters. A run only reports; the bank's parameters change with a new bank
version (the import), never from here.
"""

from core.schema import global_table, sql_migration

ID = "2026-12-03T18:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "calibration runs of the challenge bank"

SQL = f"""
CREATE TABLE calibration_run (
    id uuid PRIMARY KEY,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    bank_version text NOT NULL CHECK (length(bank_version) BETWEEN 1 AND 100),
    model text NOT NULL CHECK (model IN ('2PL', '3PL')),
    min_answers integer NOT NULL CHECK (min_answers BETWEEN 1 AND 100000),
    requested_by uuid NOT NULL,
    requested_by_label text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    tests integer CHECK (tests >= 0),
    answers integer CHECK (answers >= 0),
    items_calibrated integer CHECK (items_calibrated >= 0),
    log_likelihood double precision,
    iterations integer,
    converged boolean,
    warnings jsonb NOT NULL DEFAULT '[]',
    error text NOT NULL DEFAULT '' CHECK (length(error) <= 2000)
);
CREATE INDEX calibration_run_by_time ON calibration_run (created_at DESC, id DESC);
{global_table("calibration_run")}
CREATE TABLE calibration_item (
    run_id uuid NOT NULL REFERENCES calibration_run (id) ON DELETE CASCADE,
    challenge_id text NOT NULL CHECK (length(challenge_id) BETWEEN 1 AND 100),
    answers integer NOT NULL CHECK (answers >= 0),
    correct integer NOT NULL CHECK (correct >= 0 AND correct <= answers),
    calibrated boolean NOT NULL,
    a double precision,
    b double precision,
    c double precision,
    bank_a double precision NOT NULL,
    bank_b double precision NOT NULL,
    bank_c double precision NOT NULL,
    previous_a double precision,
    previous_b double precision,
    previous_c double precision,
    infit double precision,
    outfit double precision,
    drift boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, challenge_id)
);
{global_table("calibration_item")}
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
