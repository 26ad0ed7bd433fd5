"""Billing mail: who hears about a tenant's billing, and the dunning notices (a failed or
overdue payment, a suspension, a reactivation); an issued invoice's mail is
`billing.invoices.mail_issued`.

Each goes to the billing email of the tenant's billing details and to its owners and admins,
in the reader's language (amounts, days and moments written as it writes them, moments in the
organization's zone, named), written in the caller's transaction (`core.mail.queue_mail`): the
mail and the change it tells of commit together, or neither.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from billing.money import Money
from core.database import fetch
from core.i18n import N_, translate
from core.l10n import format_day, format_moment
from core.mail import queue_mail
from core.settings import get_settings
from tenants.context import TenantContext

_RECIPIENTS = """
SELECT u.email, u.locale FROM membership m JOIN user_account u ON u.id = m.user_id
WHERE m.tenant_id = $1 AND m.role IN ('owner', 'admin') AND u.is_active
ORDER BY u.email
"""

PAYMENT_FAILED = (
    N_("Payment failed for {organization}"),
    N_(
        "Hello,\n\nThe payment of {organization}'s subscription failed. Please update the "
        "payment method or pay what is due ({amount}) before {deadline}, or the subscription "
        "will be suspended: campaigns will then stop taking new participants.\n\n{link}\n"
    ),
)
OVERDUE = (
    N_("Invoice {number} is overdue"),
    N_(
        "Hello,\n\nInvoice {number} for {organization} ({amount}) was due on {due_on} and "
        "has not been paid yet. Please pay it before {deadline}, or the subscription will be "
        "suspended: campaigns will then stop taking new participants.\n\n{link}\n"
    ),
)
SUSPENDED = (
    N_("Subscription suspended for {organization}"),
    N_(
        "Hello,\n\n{organization}'s subscription is suspended because {amount} is overdue. "
        "Campaigns take no new participants until it is paid; participants already under way "
        "can finish, and nothing is deleted.\n\n{link}\n"
    ),
)
REACTIVATED = (
    N_("Subscription active again for {organization}"),
    N_(
        "Hello,\n\nThank you: the payment was received and {organization}'s subscription is "
        "active again. Campaigns take new participants.\n\n{link}\n"
    ),
)


async def recipients(ctx: TenantContext) -> list[tuple[str, str]]:
    """(email, locale) of whoever hears about the tenant's billing: its billing email (in
    the organization's language) and its owners and admins, each once."""
    rows = await fetch(
        "SELECT billing_email FROM billing_profile WHERE tenant_id = $1", ctx.tenant_id
    )
    found: dict[str, str] = {}
    if rows and rows[0]["billing_email"]:
        found[rows[0]["billing_email"].lower()] = ctx.tenant.default_locale
    for row in await fetch(_RECIPIENTS, ctx.tenant_id):
        found.setdefault(row["email"].lower(), row["locale"])
    return sorted(found.items())


def invoices_link(ctx: TenantContext) -> str:
    return f"{get_settings().base_url}/o/{ctx.tenant.slug}/billing/invoices"


def written(value: Any, locale: str, zone: tzinfo) -> Any:
    """A parameter of a notice as `locale` reads it: a `Money` formatted, a day written out
    ("12 December 2026"), a moment in the organization's `zone` with the zone named
    ("12 December 2026, 14:05 (Europe/Paris)"); anything else as it is."""
    if isinstance(value, Money):
        return value.format(locale)
    if isinstance(value, datetime):
        return format_moment(value, locale, zone, "long")
    if isinstance(value, date):
        return format_day(value, locale, width="long")
    return value


async def send(ctx: TenantContext, mail: tuple[str, str], **params: Any) -> int:
    """Queue `mail` (subject and body msgids) to every recipient, in their language; a
    `Money`, a `date` or a `datetime` parameter is written for each reader (`written`), in the
    organization's zone. How many were queued."""
    people = await recipients(ctx)
    for email, locale in people:
        values = {
            "organization": ctx.tenant.name,
            "link": invoices_link(ctx),
            **params,
        }
        values = {key: written(value, locale, ctx.tenant.zone) for key, value in values.items()}
        await queue_mail(
            email,
            translate(locale, mail[0], **values),
            translate(locale, mail[1], **values),
            zone=ctx.tenant.timezone,
        )
    return len(people)
