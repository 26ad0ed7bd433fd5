"""The webhook sweep reads across tenants through a function, not a setting (issue 13 §2.3,
ADR 0024).

Before, the `due_sweep` policy opened every tenant's deliveries to any transaction with no
tenant that set `jalon.sweep = 'webhook_delivery'`, a setting the runtime role can set in any
statement. Now `webhook_due_deliveries(limit)` is a `SECURITY DEFINER` function owned by the
owner role (who runs this migration): it returns the due deliveries' tenant, id and attempt
count, nothing else, and only the runtime group may call it. It reads as the owner, whom the
`owner_sweep` policy admits to the pending deliveries (the tables force row-level security on
their owner too); the runtime role is not a member of the owner role and cannot become it.

Citus: the function runs on the coordinator and reads the distributed table as any query does
(ids only, no lock); the policy names the owner role, which exists on every node.
"""

from core.schema import sql_migration

ID = "2026-12-03T21:01:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the webhook sweep through a SECURITY DEFINER function"

SQL = """
DROP POLICY due_sweep ON webhook_delivery;
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_sweep ON webhook_delivery FOR SELECT TO %I '
        'USING (status = ''pending'')', current_user);
END $$;
CREATE FUNCTION webhook_due_deliveries(max_rows integer)
RETURNS TABLE (tenant_id uuid, id uuid, attempts integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL: Citus cannot plan a SQL function's parameters on a distributed table.
    RETURN QUERY
    SELECT d.tenant_id, d.id, d.attempts FROM public.webhook_delivery d
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at
    LIMIT least(greatest(max_rows, 0), 1000);
END
$$;
REVOKE ALL ON FUNCTION webhook_due_deliveries(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_due_deliveries(integer) TO jalon_runtime;
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
