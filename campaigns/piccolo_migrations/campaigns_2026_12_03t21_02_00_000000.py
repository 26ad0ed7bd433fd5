"""The back office's book of business reads across tenants through functions, not a setting
(issue 13 §2.3, ADR 0024).

Before, the `staff_book` policies opened every tenant's memberships, subscriptions, seat packs
and balances, invoices and their lines, and participations to any transaction with no tenant
that set `jalon.book = 'tenants'`, a setting the runtime role can set in any statement. Now
each of the book's cross-tenant questions is a `SECURITY DEFINER` function owned by the owner
role (who runs this migration), with a fixed search path, returning the figures the page shows
and nothing else; only the runtime group may call them, and `tenants.book.dangerously_open_book`
still checks the staff member first. The functions read as the owner, whom the `owner_book`
policies admit to these tables (they force row-level security on their owner too); the
runtime role is not a member of the owner role and cannot become it.

The bodies are the statements `billing.book` and `campaigns.book` ran before, unchanged but
for the casts to the declared column types. Citus: each function runs on the coordinator and
its statement is planned as before (reads, no lock); no function is distributed.

It lives in the campaigns app, the last to migrate, because it names tables of tenants, billing
and campaigns (Piccolo runs each app's migrations in turn).
"""

from core.schema import sql_migration

ID = "2026-12-03T21:02:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the book of business through SECURITY DEFINER functions"

_TABLES = (
    "membership",
    "subscription",
    "seat_pack",
    "seat_balance",
    "invoice",
    "invoice_line",
    "participation",
)

#: The seats of the current period of subscription `s` of plan `p`, packs summed in `k`.
_SOLD = """(CASE p.kind WHEN 'per_seat' THEN s.quantity
              WHEN 'license' THEN greatest(s.quantity, coalesce(p.included_seats, 0))
              ELSE 0 END + coalesce(k.seats, 0))::integer"""

_FUNCTIONS = {
    "book_matching_tenants(search text, plan_code text)": (
        "TABLE (id uuid, why text)",
        """
SELECT m.tenant_id, 'member'::text
FROM public.membership m JOIN public.user_account u ON u.id = m.user_id
WHERE search IS NOT NULL AND u.email ILIKE search
UNION ALL
SELECT s.tenant_id, 'plan'::text FROM public.subscription s JOIN public.plan p ON p.id = s.plan_id
WHERE plan_code IS NOT NULL AND p.code = plan_code""",
    ),
    "book_page_facts(tenant_ids uuid[], day date)": (
        "TABLE (tenant_id uuid, plan text, subscription_status text, seats_used integer,"
        " seats_sold integer)",
        f"""
SELECT s.tenant_id, p.code, s.status, coalesce(b.used, 0)::integer, {_SOLD}
FROM public.subscription s
JOIN public.plan p ON p.id = s.plan_id
LEFT JOIN public.seat_balance b ON b.tenant_id = s.tenant_id
                               AND b.period_start = s.current_period_start
LEFT JOIN (SELECT tenant_id, sum(seats) AS seats FROM public.seat_pack
           WHERE tenant_id = ANY(tenant_ids) AND removed_at IS NULL
             AND starts_on <= day AND ends_on >= day
           GROUP BY tenant_id) k ON k.tenant_id = s.tenant_id
WHERE s.tenant_id = ANY(tenant_ids)""",  # noqa: S608 - a constant clause
    ),
    "book_revenue(since timestamptz, until timestamptz)": (
        "TABLE (currency text, subscriptions bigint, arr bigint)",
        """
WITH recurring AS (
    SELECT s.currency, count(*) AS subscriptions,
           sum(CASE p.kind WHEN 'per_seat' THEN pp.unit_amount * s.quantity
                           ELSE pp.unit_amount END
               * CASE p.interval WHEN 'month' THEN 12 ELSE 1 END) AS arr
    FROM public.subscription s
    JOIN public.plan p ON p.id = s.plan_id
    JOIN public.plan_price pp ON pp.plan_id = s.plan_id AND pp.currency = s.currency
         AND pp.category = s.price_category
    WHERE s.status IN ('active', 'past_due') AND p.kind IN ('per_seat', 'license')
    GROUP BY s.currency),
packs AS (
    SELECT i.currency, count(DISTINCT i.tenant_id) AS subscriptions, sum(l.amount) AS arr
    FROM public.invoice i
    JOIN public.invoice_line l ON l.tenant_id = i.tenant_id AND l.invoice_id = i.id
    WHERE i.kind = 'invoice' AND i.status IN ('open', 'paid', 'uncollectible')
      AND l.kind = 'seat_pack' AND i.issued_at > since AND i.issued_at <= until
    GROUP BY i.currency)
SELECT currency::text,
       (coalesce(r.subscriptions, 0) + coalesce(k.subscriptions, 0))::bigint AS subscriptions,
       (coalesce(r.arr, 0) + coalesce(k.arr, 0))::bigint AS arr
FROM recurring r FULL JOIN packs k USING (currency)
ORDER BY arr DESC, currency""",
    ),
    "book_seats(day date)": (
        "TABLE (plan_kind text, subscriptions bigint, sold bigint, used bigint)",
        f"""
SELECT p.kind, count(*)::bigint, sum({_SOLD})::bigint, sum(coalesce(b.used, 0))::bigint
FROM public.subscription s
JOIN public.plan p ON p.id = s.plan_id
LEFT JOIN public.seat_balance b ON b.tenant_id = s.tenant_id
                               AND b.period_start = s.current_period_start
LEFT JOIN (SELECT tenant_id, sum(seats) AS seats FROM public.seat_pack
           WHERE removed_at IS NULL AND starts_on <= day AND ends_on >= day
           GROUP BY tenant_id) k ON k.tenant_id = s.tenant_id
WHERE s.status IN ('trialing', 'active', 'past_due')
GROUP BY p.kind ORDER BY p.kind""",  # noqa: S608 - a constant clause
    ),
    "book_trials_ending(since timestamptz, until timestamptz, max_rows integer)": (
        "TABLE (tenant_id uuid, tenant_name text, plan text, trial_end timestamptz)",
        """
SELECT o.id, o.name::text, p.code, s.trial_end
FROM public.subscription s JOIN public.plan p ON p.id = s.plan_id
JOIN public.organization o ON o.id = s.tenant_id
WHERE s.status = 'trialing' AND s.trial_end >= since AND s.trial_end < until
ORDER BY s.trial_end, o.name LIMIT max_rows""",
    ),
    "book_failed_payments(max_rows integer)": (
        "TABLE (tenant_id uuid, tenant_name text, plan text, gateway text,"
        " past_due_since timestamptz)",
        """
SELECT o.id, o.name::text, p.code, s.gateway, s.past_due_since
FROM public.subscription s JOIN public.plan p ON p.id = s.plan_id
JOIN public.organization o ON o.id = s.tenant_id
WHERE s.status = 'past_due'
ORDER BY s.past_due_since NULLS LAST, o.name LIMIT max_rows""",
    ),
    "book_overdue_invoices(day date, max_rows integer)": (
        "TABLE (tenant_id uuid, tenant_name text, invoice_id uuid, number text, due_on date,"
        " currency text, amount_due bigint)",
        """
SELECT o.id, o.name::text, i.id, i.number, i.due_on, i.currency::text,
       (i.total - i.amount_paid)::bigint
FROM public.invoice i JOIN public.organization o ON o.id = i.tenant_id
WHERE i.kind = 'invoice' AND i.status = 'open' AND i.due_on < day
ORDER BY i.due_on, o.name, i.number LIMIT max_rows""",
    ),
    "book_assessments_per_day(since timestamptz, until timestamptz)": (
        "TABLE (what text, day date, n bigint)",
        """
SELECT 'started'::text, (created_at AT TIME ZONE 'UTC')::date, count(*)::bigint
FROM public.participation WHERE created_at >= since AND created_at < until GROUP BY 2
UNION ALL
SELECT 'completed'::text, (completed_at AT TIME ZONE 'UTC')::date, count(*)::bigint
FROM public.participation WHERE completed_at >= since AND completed_at < until GROUP BY 2""",
    ),
}


def _function(signature: str, returns: str, body: str) -> str:
    # PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters on distributed tables
    # ("could not create distributed plan"); the output columns yield to the tables' columns.
    return f"""
CREATE FUNCTION {signature}
RETURNS {returns}
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $book$
#variable_conflict use_column
BEGIN
RETURN QUERY {body};
END
$book$;
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {signature} TO jalon_runtime;
"""


def _owner_policy(table: str) -> str:
    return f"""
DROP POLICY staff_book ON {table};
DO $$ BEGIN
    EXECUTE format('CREATE POLICY owner_book ON {table} FOR SELECT TO %I USING (true)',
                   current_user);
END $$;
"""


SQL = "".join(_owner_policy(table) for table in _TABLES) + "".join(
    _function(signature, returns, body) for signature, (returns, body) in _FUNCTIONS.items()
)

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
