"""The `jalon` command line: serve, worker, migrate, demo, and operators' create commands.

Create commands take their fields as options and print the created object as one JSON line,
so scripts can chain them (`jalon tenant create … | jq -r .id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging.config
import sys
from typing import Any
from uuid import UUID

import click

from api.cli_engine import engine_cli
from api.runtime import connect, import_jobs, run, settle_for_serving
from core import database, metrics
from core.errors import UserError
from core.i18n import translate
from core.logging import logging_config
from core.settings import get_settings
from tenants.permissions import StaffRole


def _emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, default=str, ensure_ascii=False))


def _fail(error: UserError) -> None:
    click.echo(
        translate("en", error.message, **error.params)
        + (f" (field: {error.field})" if error.field else ""),
        err=True,
    )
    sys.exit(2)


@click.group()
def main() -> None:
    """Jalon: assess, develop and certify digital skills."""


@main.command()
def migrate() -> None:
    """Create the roles and apply every pending migration (as the owner role)."""
    settings = get_settings()
    owner = database.owner_url(settings)
    asyncio.run(
        database.migrate(
            owner, settings.runtime_role, settings.runtime_password, "api.piccolo_conf"
        )
    )
    click.echo("migrations applied", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    envvar="JALON_ACCESS_LOG",
    show_default=True,
    help="A line per request (JALON_ACCESS_LOG=true): off by default, it costs throughput.",
)
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the web application with granian (ADR 0022)."""
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    settings = get_settings()
    if settings.dev_idp and (host not in ("127.0.0.1", "localhost", "::1") or workers != 1):
        # It signs anyone in, and keeps its codes in one process's memory.
        raise click.UsageError("JALON_DEV_IDP=true serves on 127.0.0.1 with one worker only")
    if settings.development and host not in ("127.0.0.1", "localhost", "::1"):
        # Development mode shows every organization's mail (sign-in links) on /dev/outbox.
        raise click.UsageError("JALON_ENV=development serves on a loopback address only")
    log_config = logging_config(settings.log_format == "json")
    logging.config.dictConfig(log_config)
    if workers > 1:
        # /metrics on any worker sums every worker's values (docs/operations.md, "Metrics")
        metrics.use_multiprocess_directory(settings.data_dir / "metrics" / f"serve-{port}")
    connect(settings)  # start the embedded server before workers fork
    import_jobs()
    click.echo(f"Jalon on {settings.base_url} (listening on http://{host}:{port})", err=True)
    # granian's own loggers write through ours (its access log only when asked for)
    log_config["loggers"] |= {
        name: {"handlers": [], "propagate": True} for name in ("_granian", "granian.access")
    }
    Server(
        "api.cli:served_app",
        factory=True,  # built in each worker process
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        log_dictconfig=log_config,  # each worker process logs JSON (or text) lines too
        log_access=access_log,
        # Idle connections stay open longer than a proxy keeps its upstream ones (nginx: 60 s)
        # and than a participant thinks: closing one as the client reuses it fails a request.
        http1_settings=HTTP1Settings(header_read_timeout=75_000),
    ).serve()


def served_app() -> Any:
    """The application `jalon serve` runs in each worker: behind uvicorn's proxy-headers
    middleware, which takes the client's address and scheme from X-Forwarded-For and
    X-Forwarded-Proto when the peer is one of JALON_FORWARDED_ALLOW_IPS; the peer itself is
    kept in the scope (`web.requests.keeping_the_peer`)."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from api.asgi import app
    from web.requests import keeping_the_peer

    settle_for_serving()
    trusted = get_settings().forwarded_allow_ips
    return keeping_the_peer(ProxyHeadersMiddleware(app, trusted_hosts=trusted))  # type: ignore[arg-type]


@main.command()
@click.option(
    "--metrics-port",
    default=None,
    type=int,
    help="Serve the worker's Prometheus metrics on 127.0.0.1 at this port.",
)
def worker(metrics_port: int | None) -> None:
    """Run an arq worker for background jobs (requires REDIS_URL)."""
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    from core import jobs
    from core.mail import configure_mailer

    settings = get_settings()
    if not settings.redis_url:
        raise click.UsageError("REDIS_URL is not set: without it, jobs run inside `jalon serve`.")
    import_jobs()
    connect(settings)

    async def startup(ctx: dict[str, Any]) -> None:
        await database.start_pool()
        jobs.configure_queue(settings.redis_url)
        configure_mailer(settings.smtp_url, settings.mail_from)
        # The job outbox's relay: what the web processes could not hand to Redis (ADR 0025).
        ctx["outbox_relay"] = asyncio.create_task(jobs.relay_forever())

    async def shutdown(ctx: dict[str, Any]) -> None:
        relay = ctx.get("outbox_relay")
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        await jobs.get_queue().close()
        await database.close_pool()

    jobs.WorkerSettings.functions = jobs.worker_functions()
    jobs.WorkerSettings.cron_jobs = jobs.worker_cron_jobs()
    jobs.WorkerSettings.redis_settings = RedisSettings.from_dsn(settings.redis_url)  # type: ignore[attr-defined]
    jobs.WorkerSettings.on_startup = startup  # type: ignore[attr-defined]
    jobs.WorkerSettings.on_shutdown = shutdown  # type: ignore[attr-defined]
    # arq's job lines and ours, JSON or text like `jalon serve`
    logging.config.dictConfig(logging_config(settings.log_format == "json"))
    if metrics_port is not None:
        metrics.serve_on_port(metrics_port)
    run_worker(jobs.WorkerSettings)  # type: ignore[arg-type]


@main.command()
def demo() -> None:
    """Seed the demo organizations, people and data (safe to run again)."""
    from api.demo import seed

    logins = run(seed)
    settings = get_settings()
    click.echo("")
    click.echo(f"Jalon demo ready: {settings.base_url}")
    click.echo("Demo sign-ins (password for all: " + logins.password + "):")
    for line in logins.accounts:
        click.echo(f"  {line}")
    click.echo("Demo campaigns (open a link, sign in or create an account, take the test):")
    for line in logins.campaigns:
        click.echo(f"  {line}")
    if logins.sso:
        click.echo("Single sign-on (the demo identity provider, JALON_DEV_IDP):")
        for line in logins.sso:
            click.echo(f"  {line}")
    if settings.dev_outbox:
        click.echo(f"Mail sent by the demo lands in {settings.base_url}/dev/outbox")


@main.group()
def tenant() -> None:
    """Organizations (tenants)."""


@tenant.command("create")
@click.option("--name", required=True)
@click.option("--slug", required=True)
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["company", "local_authority", "foreign_agency", "school", "other"]),
)
@click.option("--country", required=True, help="ISO 3166 alpha-2, e.g. FR")
@click.option("--locale", default="fr", show_default=True)
@click.option("--timezone", default="Europe/Paris", show_default=True)
@click.option("--currency", default="EUR", show_default=True)
@click.option(
    "--status",
    default="trial",
    show_default=True,
    type=click.Choice(["trial", "active", "suspended", "closed"]),
)
@click.option("--siret", default=None)
@click.option("--vat-number", default=None)
@click.option("--parent", "parent_slug", default=None, help="slug of the parent organization")
@click.option("--owner-email", default=None, help="an existing account that becomes owner")
def tenant_create(**options: Any) -> None:
    """Create an organization; prints it as JSON."""
    from tenants.accounts import find_user_by_email
    from tenants.context import Actor
    from tenants.organizations import OrganizationFields, create_organization

    async def work() -> dict[str, Any]:
        owner = None
        if options["owner_email"]:
            owner = await find_user_by_email(options["owner_email"])
            if owner is None:
                raise UserError("No account has this email address.", field="owner_email")
        fields = OrganizationFields(
            name=options["name"],
            slug=options["slug"],
            kind=options["kind"],
            country=options["country"],
            default_locale=options["locale"],
            timezone=options["timezone"],
            currency=options["currency"],
            siret=options["siret"],
            vat_number=options["vat_number"],
            parent_slug=options["parent_slug"],
        )
        created = await create_organization(
            fields, owner, Actor.system("cli"), status=options["status"]
        )
        return {
            "id": created.id,
            "slug": created.slug,
            "name": created.name,
            "status": created.status,
            "owner": owner.email if owner else None,
        }

    try:
        _emit(run(work))
    except UserError as error:
        _fail(error)


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--tenant", "slug", required=True, help="organization slug")
@click.option("--name", required=True)
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="repeatable, e.g. org:members:read"
)
@click.option("--expires-in-days", type=int, default=None)
def token_create(
    slug: str, name: str, scopes: tuple[str, ...], expires_in_days: int | None
) -> None:
    """Create an API token; the secret is printed here only, once."""
    from tenants.organizations import system_context, tenant_by_slug
    from tenants.tokens import create_token

    async def work() -> dict[str, Any]:
        ctx = system_context(await tenant_by_slug(slug), "cli")
        issued = await create_token(ctx, name, list(scopes), expires_in_days)
        return {
            "id": issued.id,
            "tenant": slug,
            "name": issued.name,
            "token": issued.token,
            "scopes": issued.scopes,
            "expires_at": issued.expires_at,
        }

    try:
        _emit(run(work))
    except UserError as error:
        _fail(error)


@main.group()
def staff() -> None:
    """Our own staff (back office)."""


@staff.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    default=StaffRole.SUPERADMIN.value,
    show_default=True,
    type=click.Choice([role.value for role in StaffRole]),
)
@click.option("--locale", default="fr", show_default=True)
@click.option("--password", default=None, help="omit to let the person use a reset link")
@click.option(
    "--force",
    is_flag=True,
    help="break-glass: add staff even though a superadmin exists (audited nowhere but here)",
)
def staff_create(
    email: str, name: str, role: str, locale: str, password: str | None, force: bool
) -> None:
    """Create (or promote) the first superadmin; prints it as JSON. Once a superadmin exists,
    staff are added in the back office (/admin/staff), unless --force (break-glass)."""
    from tenants.accounts import create_user, find_user_by_email
    from tenants.staff import has_superadmin, make_staff

    async def work() -> dict[str, Any] | None:
        if await has_superadmin():
            if not force:
                return None
            click.echo(
                "WARNING: a superadmin exists; adding staff from the command line (--force, "
                "break-glass). Prefer the back office (/admin/staff), which audits it.",
                err=True,
            )
        user = await find_user_by_email(email)
        if user is None:
            user = await create_user(email, name, password, locale, verified=True)
        await make_staff(user.id, role)
        return {"id": user.id, "email": user.email, "name": user.name, "role": role}

    try:
        created = run(work)
    except UserError as error:
        _fail(error)
        return
    if created is None:
        click.echo(
            "A superadmin already exists: ask a superadmin to add staff in the back office at "
            f"{get_settings().base_url}/admin/staff (or use --force to break the glass).",
            err=True,
        )
        sys.exit(2)
    _emit(created)
    click.echo(
        "Their authenticator app (second factor) is set up at the first sign-in: "
        f"{get_settings().base_url}/admin/second-factor/setup shows the QR code.",
        err=True,
    )


@main.group()
def reports() -> None:
    """Problem reports on challenges, for content editors (ADR 0013)."""


_EDITOR = click.option(
    "--as",
    "editor",
    required=True,
    help="email of the content editor (staff role content_editor or superadmin)",
)


async def _editor_id(email: str) -> UUID:
    from core.errors import Forbidden
    from tenants.accounts import find_user_by_email

    user = await find_user_by_email(email)
    if user is None:
        raise Forbidden()
    return user.id


@reports.command("list")
@_EDITOR
@click.option(
    "--status",
    type=click.Choice(["open", "withdrawn", "reviewed", "retired"]),
    default=None,
    help="only flags in this state (default: all, withdrawn first)",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def reports_list(editor: str, status: str | None, limit: int) -> None:
    """Reported challenges, one JSON line each: state, reports since the last review per
    category and locale, and a few recent comments (no person, no organization)."""
    from dataclasses import asdict

    from campaigns.problem_reports import list_flags

    async def work() -> list[dict[str, Any]]:
        flags = await list_flags(await _editor_id(editor), status, limit)
        return [asdict(flag) for flag in flags]

    try:
        for flag in run(work):
            _emit(flag)
    except UserError as error:
        _fail(error)


@reports.command("review")
@_EDITOR
@click.argument("challenge_id")
def reports_review(editor: str, challenge_id: str) -> None:
    """Mark a reported challenge reviewed: it is selected again and its count restarts."""
    from campaigns.problem_reports import mark_reviewed

    async def work() -> dict[str, Any]:
        status = await mark_reviewed(await _editor_id(editor), challenge_id)
        return {"challenge_id": challenge_id, "status": status}

    try:
        _emit(run(work))
    except UserError as error:
        _fail(error)


@reports.command("retire")
@_EDITOR
@click.argument("challenge_id")
def reports_retire(editor: str, challenge_id: str) -> None:
    """Retire a reported challenge: selection skips it until it is marked reviewed."""
    from campaigns.problem_reports import retire

    async def work() -> dict[str, Any]:
        status = await retire(await _editor_id(editor), challenge_id)
        return {"challenge_id": challenge_id, "status": status}

    try:
        _emit(run(work))
    except UserError as error:
        _fail(error)


@main.group()
def sso() -> None:
    """Single sign-on connections."""


@sso.command("rotate-keys")
def sso_rotate_keys() -> None:
    """Re-encrypt every SSO connection secret and every staff TOTP seed under the first key
    of JALON_SSO_KEYS (the others still decrypt); then the old keys can be removed. Prints how
    many changed."""
    from sso.connections import rotate_keys
    from tenants.staff import rotate_totp_keys

    async def work() -> dict[str, int]:
        connections = await rotate_keys()
        seeds = await rotate_totp_keys()
        return {"reencrypted": connections + seeds, "connections": connections, "staff_totp": seeds}

    _emit(run(work))


@main.group()
def billing() -> None:
    """Billing operations of our account managers."""


@billing.command("record-payment")
@click.option("--tenant", "slug", required=True, help="organization slug")
@click.option("--invoice", "number", required=True, help="invoice number, e.g. JALON-2026-000042")
@click.option("--amount", required=True, help="amount received, e.g. 1200.50")
@click.option(
    "--reference",
    default="",
    help="the bank's reference (recorded once); required for a bank transfer",
)
@click.option("--received-on", default=None, help="YYYY-MM-DD (default: today)")
@click.option(
    "--method",
    type=click.Choice(["bank_transfer", "card", "sepa_debit"]),
    default="bank_transfer",
    show_default=True,
)
def billing_record_payment(
    slug: str, number: str, amount: str, reference: str, received_on: str | None, method: str
) -> None:
    """Record money received for an invoice (a bank transfer, say); a payment that settles
    what was overdue makes the subscription active again. Prints the invoice's state. A
    payment on a paid invoice, or more than is still due, is refused."""
    if method == "bank_transfer" and not reference.strip():
        raise click.UsageError(
            "--reference is required for a bank transfer (the bank's reference: the same "
            "transfer is then recorded once)."
        )
    from billing.catalogue import system_staff
    from billing.invoices import get_invoice
    from billing.payments import invoice_id_by_number, parse_amount, record_payment
    from core.validation import clean_day
    from tenants.organizations import system_context, tenant_by_slug

    async def work() -> dict[str, Any]:
        ctx = system_context(await tenant_by_slug(slug), "cli")
        invoice_id = await invoice_id_by_number(ctx, number)
        invoice = await get_invoice(ctx, invoice_id)
        applied = await record_payment(
            ctx,
            system_staff("cli"),
            invoice_id,
            amount=parse_amount(amount, invoice.currency),
            method=method,
            reference=reference,
            received_on=clean_day(received_on, "received_on"),
        )
        return {
            "invoice": applied.invoice.number,
            "status": applied.invoice.status,
            "total": applied.invoice.total,
            "paid": applied.invoice.amount_paid,
            "currency": applied.invoice.currency,
            "recorded": applied.payment is not None,
        }

    try:
        _emit(run(work))
    except UserError as error:
        _fail(error)


main.add_command(engine_cli)


if __name__ == "__main__":
    main()
