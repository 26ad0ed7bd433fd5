"""Content editors read problem reports across tenants through a function, not a setting
(issue 13 §2, ADR 0024).

Before, the `content_triage` policy opened every tenant's `challenge_report` rows to any
transaction with no tenant that set `jalon.triage = 'challenge_report'`, a setting the runtime
role can set in any statement (`campaigns.problem_reports` set it after checking the staff
member). Now `triage_report_samples(challenge_ids, per_challenge)` is a `SECURITY DEFINER`
function owned by the owner role (who runs this migration), with a fixed search path: it
returns the statement `list_flags` ran before, unchanged — the latest commented reports of the
given challenges since their last review, with no person and no organization — and only the
runtime group may call it; `list_flags` still checks the staff member first. At most ten
reports per challenge, whatever is asked (the page shows three). It reads as the owner, whom
the `owner_triage` policy admits to the table (it forces row-level security on its owner too);
the runtime role is not a member of the owner role and cannot become it.

Citus: the function runs on the coordinator and its statement is planned as before (the
window over the rows the shards return); no function is distributed, and the policy names the
owner role, which exists on every node. PL/pgSQL, not SQL: Citus cannot plan a SQL function's
parameters on a distributed table.
"""

from core.schema import sql_migration

ID = "2026-12-04T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "problem-report triage through a SECURITY DEFINER function"

_SIGNATURE = "triage_report_samples(challenge_ids text[], per_challenge integer)"

SQL = f"""
DROP POLICY content_triage ON challenge_report;
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_triage ON challenge_report FOR SELECT TO %I USING (true)',
        current_user);
END $$;
CREATE FUNCTION {_SIGNATURE}
RETURNS TABLE (challenge_id text, locale text, category text, comment text, answer jsonb,
               answer_submitted boolean, answer_correct boolean, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $triage$
#variable_conflict use_column
BEGIN
    -- The output columns yield to the tables' columns; every reference is qualified anyway.
    RETURN QUERY
    SELECT s.challenge_id, s.locale, s.category, s.comment, s.answer, s.answer_submitted,
           s.answer_correct, s.created_at
    FROM (
        SELECT r.challenge_id, r.locale, r.category, r.comment, r.answer, r.answer_submitted,
               r.answer_correct, r.created_at,
               row_number() OVER (PARTITION BY r.challenge_id ORDER BY r.created_at DESC) AS n
        FROM public.challenge_report r
        JOIN public.challenge_flag f ON f.challenge_id = r.challenge_id
        WHERE r.challenge_id = ANY(challenge_ids) AND r.comment <> ''
          AND r.created_at > coalesce(f.reviewed_at, '-infinity')) s
    WHERE s.n <= least(greatest(per_challenge, 0), 10)
    ORDER BY s.challenge_id, s.created_at DESC;
END
$triage$;
REVOKE ALL ON FUNCTION {_SIGNATURE} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {_SIGNATURE} TO jalon_runtime;
"""  # noqa: S608 - a constant signature

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
