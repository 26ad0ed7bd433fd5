"""The job outbox (ADR 0025): every job is a row written in the transaction that causes it,
relayed to the queue after commit. The runtime role may only insert rows; the relay, the
workers' outcomes and the back office go through SECURITY DEFINER functions owned by the
owner, which read across tenants and return only what their caller needs (no policy opened
by a setting)."""

from core.database import RUNTIME_GROUP_ROLE
from core.schema import sql_migration

ID = "2026-12-03T21:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "job outbox"

_DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp"

SQL = f"""
CREATE TABLE job_outbox (
    id uuid PRIMARY KEY,
    organization_id uuid,
    job_id text NOT NULL,
    name text NOT NULL,
    args jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'relayed', 'done', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    relay_after timestamptz NOT NULL DEFAULT now(),
    relay_tries integer NOT NULL DEFAULT 0,
    relayed_at timestamptz,
    finished_at timestamptz,
    tries integer NOT NULL DEFAULT 0,
    last_error text,
    last_error_at timestamptz
);
-- One pending row per job id: a retried request cannot queue the same work twice.
CREATE UNIQUE INDEX job_outbox_pending_job ON job_outbox (job_id) WHERE status = 'pending';
CREATE INDEX job_outbox_job ON job_outbox (job_id);
CREATE INDEX job_outbox_due ON job_outbox (relay_after) WHERE status IN ('pending', 'relayed');
CREATE INDEX job_outbox_failed ON job_outbox (last_error_at DESC) WHERE status = 'failed';
GRANT INSERT ON job_outbox TO {RUNTIME_GROUP_ROLE};

-- The relay claims due rows (pending, or relayed long ago and never finished) for a lease.
CREATE FUNCTION jalon_outbox_claim(p_limit integer, p_lease_seconds double precision,
                                   p_max_relays integer)
RETURNS TABLE (id uuid, job_id text, name text, args jsonb) {_DEFINER} AS $$
BEGIN
    -- Rows relayed too often without finishing are given up on, visibly.
    UPDATE job_outbox o SET status = 'failed', last_error_at = now(),
        last_error = 'relayed too many times, never finished'
    WHERE o.status IN ('pending', 'relayed') AND o.relay_after <= now()
        AND o.relay_tries >= p_max_relays;
    RETURN QUERY
    UPDATE job_outbox o
    SET relay_after = now() + make_interval(secs => p_lease_seconds),
        relay_tries = o.relay_tries + 1
    WHERE o.id IN (
        SELECT d.id FROM job_outbox d
        WHERE d.status IN ('pending', 'relayed') AND d.relay_after <= now()
        ORDER BY d.relay_after LIMIT p_limit
    )
    RETURNING o.id, o.job_id, o.name, o.args;
END $$;

-- Rows handed to the queue: checked again after `p_recheck_seconds` unless they finish.
CREATE FUNCTION jalon_outbox_relayed(p_ids uuid[], p_recheck_seconds double precision)
RETURNS integer {_DEFINER} AS $$
DECLARE n integer;
BEGIN
    UPDATE job_outbox SET status = 'relayed', relayed_at = now(),
        relay_after = now() + make_interval(secs => p_recheck_seconds)
    WHERE id = ANY(p_ids) AND status IN ('pending', 'relayed');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The queue could not take them (Redis down): try again after an exponential back-off.
CREATE FUNCTION jalon_outbox_relay_failed(p_ids uuid[], p_error text)
RETURNS integer {_DEFINER} AS $$
DECLARE
    n integer;
    started double precision := extract(epoch FROM now());
BEGIN
    -- (Epoch arithmetic: Citus refuses a STABLE function next to a column in an UPDATE.)
    UPDATE job_outbox SET
        relay_after = to_timestamp(started + least(power(2, relay_tries), 300)),
        last_error = left(p_error, 2000), last_error_at = now()
    WHERE id = ANY(p_ids) AND status = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- A worker's try of a job ended: 'done', 'failed' (its last try) or 'retrying'.
CREATE FUNCTION jalon_job_outcome(p_job_id text, p_outcome text, p_tries integer,
                                  p_error text)
RETURNS integer {_DEFINER} AS $$
DECLARE n integer;
BEGIN
    IF p_outcome NOT IN ('done', 'failed', 'retrying') THEN
        RAISE EXCEPTION 'unknown job outcome %', p_outcome;
    END IF;
    -- (No CASE around now(): Citus refuses non-immutable functions in CASE and COALESCE.)
    IF p_outcome = 'retrying' THEN
        UPDATE job_outbox SET tries = greatest(tries, p_tries),
            last_error = left(p_error, 2000), last_error_at = now()
        WHERE job_id = p_job_id AND status IN ('pending', 'relayed');
    ELSIF p_error IS NULL THEN
        UPDATE job_outbox SET status = p_outcome, finished_at = now(),
            tries = greatest(tries, p_tries)
        WHERE job_id = p_job_id AND status IN ('pending', 'relayed');
    ELSE
        UPDATE job_outbox SET status = p_outcome, finished_at = now(),
            tries = greatest(tries, p_tries),
            last_error = left(p_error, 2000), last_error_at = now()
        WHERE job_id = p_job_id AND status IN ('pending', 'relayed');
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Age in seconds of the oldest row not yet handed to the queue (0 when none waits).
CREATE FUNCTION jalon_outbox_lag() RETURNS double precision {_DEFINER} AS $$
BEGIN
    RETURN coalesce((SELECT extract(epoch FROM now() - min(created_at))::double precision
                     FROM job_outbox WHERE status = 'pending'), 0);
END $$;

-- The jobs that failed for good, newest first: for the back office.
CREATE FUNCTION jalon_failed_jobs(p_limit integer)
RETURNS TABLE (id uuid, organization_id uuid, job_id text, name text, args jsonb,
               tries integer, last_error text, last_error_at timestamptz,
               created_at timestamptz) {_DEFINER} AS $$
BEGIN
    RETURN QUERY
    SELECT o.id, o.organization_id, o.job_id, o.name, o.args, o.tries, o.last_error,
           o.last_error_at, o.created_at
    FROM job_outbox o WHERE o.status = 'failed'
    ORDER BY o.last_error_at DESC NULLS LAST LIMIT p_limit;
END $$;

-- Finished rows are kept `p_keep_days` days, then deleted (failed ones stay for the office).
CREATE FUNCTION jalon_outbox_purge(p_keep_days integer) RETURNS integer {_DEFINER} AS $$
DECLARE n integer;
BEGIN
    DELETE FROM job_outbox
    WHERE status = 'done' AND finished_at < now() - make_interval(days => p_keep_days);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION jalon_outbox_claim(integer, double precision, integer),
    jalon_outbox_relayed(uuid[], double precision), jalon_outbox_relay_failed(uuid[], text),
    jalon_job_outcome(text, text, integer, text), jalon_outbox_lag(),
    jalon_failed_jobs(integer), jalon_outbox_purge(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jalon_outbox_claim(integer, double precision, integer),
    jalon_outbox_relayed(uuid[], double precision), jalon_outbox_relay_failed(uuid[], text),
    jalon_job_outcome(text, text, integer, text), jalon_outbox_lag(),
    jalon_failed_jobs(integer), jalon_outbox_purge(integer) TO {RUNTIME_GROUP_ROLE};
"""  # noqa: S608 - only our own constants are formatted in


forwards = sql_migration(ID, "core", DESCRIPTION, SQL)
