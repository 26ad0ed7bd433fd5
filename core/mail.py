"""Mail: a transactional outbox, delivered by a job through a `Mailer`.

`queue_mail()` writes the message in the caller's transaction and enqueues its delivery after
commit, so a rolled-back change sends nothing and a crash after commit loses nothing.
`SmtpMailer` delivers in production; without SMTP (development mode only: production refuses
to start without it), `OutboxMailer` holds messages unsent in the table for the development
outbox page, where a person on this machine can click the links. A message written for an
organization keeps that organization's zone (`zone`: its times are in it), so the outbox shows
when it was written in that zone, named, and in UTC, named, for the others; the table is global,
so it holds the zone's name rather than a tenant id.

Bodies carry live links (invitations, magic links, resets): a body is kept only until its
message is sent, then redacted, and the record (recipient, subject, status, dates) is deleted
after `JALON_MAIL_RETENTION_DAYS` by the hourly `purge_mail` (ADR 0024).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

from piccolo.columns import UUID as UUIDColumn
from piccolo.columns import Integer, Text, Timestamptz
from piccolo.table import Table

from core.database import DB, fetch, global_transaction
from core.jobs import enqueue, every, job
from core.settings import get_settings

logger = logging.getLogger("jalon.mail")

#: Where a message is (`mail_message.status`).
QUEUED, HELD, SENT, FAILED = "queued", "held", "sent", "failed"
#: Attempts after which a message is given up (`failed`, its body redacted).
MAX_ATTEMPTS = 20


class MailMessage(Table, tablename="mail_message", db=DB):
    id = UUIDColumn(primary_key=True)
    to_address = Text()
    subject = Text()
    body_text = Text()
    body_html = Text(null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    status = Text(default=QUEUED)
    redacted_at = Timestamptz(null=True, default=None)
    #: The IANA zone of the organization the message was written for; None outside one.
    zone = Text(null=True, default=None)


@dataclass(frozen=True)
class OutgoingMail:
    to_address: str
    subject: str
    body_text: str
    body_html: str | None


class Mailer(Protocol):
    """Delivers one message or raises."""

    async def send(self, mail: OutgoingMail) -> None: ...


class OutboxMailer:
    """Delivers nowhere: `deliver_mail` holds the messages unsent, readable in the development
    outbox (development mode only)."""

    async def send(self, mail: OutgoingMail) -> None:
        return None


class SmtpMailer:
    """Delivers through an SMTP server given as `smtp[s]://user:password@host:port`."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender

    def _send_blocking(self, mail: OutgoingMail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to_address
        message["Subject"] = mail.subject
        message.set_content(mail.body_text)
        if mail.body_html:
            message.add_alternative(mail.body_html, subtype="html")
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, context=context, timeout=30)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=30)
        with client:
            client.ehlo()  # has_extn() only knows what EHLO announced
            if not self.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif not self.implicit_tls and self.username:
                # Never send a password in clear: a server without TLS gets no credentials.
                raise smtplib.SMTPNotSupportedError(
                    f"{self.host}:{self.port} offers no STARTTLS; refusing to send credentials"
                )
            if self.username and self.password:
                client.login(self.username, self.password)
            client.send_message(message)

    async def send(self, mail: OutgoingMail) -> None:
        await asyncio.to_thread(self._send_blocking, mail)


_mailer: Mailer = OutboxMailer()


def configure_mailer(smtp_url: str | None, sender: str) -> Mailer:
    """SMTP when configured, the development outbox otherwise."""
    return use_mailer(SmtpMailer(smtp_url, sender) if smtp_url else OutboxMailer())


def use_mailer(mailer: Mailer) -> Mailer:
    """Deliver through `mailer` from now on."""
    global _mailer
    _mailer = mailer
    return _mailer


def get_mailer() -> Mailer:
    return _mailer


async def queue_mail(
    to_address: str,
    subject: str,
    body_text: str,
    body_html: str | None = None,
    *,
    zone: str | None = None,
) -> UUID:
    """Write a message in the current transaction; it is delivered after commit. Outside a
    transaction it refuses (RuntimeError), as the other helpers do: the message and the change
    it tells of must commit together, or neither. `zone`: the IANA zone of the organization the
    message is written for (its times are in it), kept for the development outbox."""
    if DB.current_transaction.get() is None:
        raise RuntimeError("queue_mail() needs an open transaction()")
    message_id = uuid4()
    await MailMessage.insert(
        MailMessage(
            id=message_id,
            to_address=to_address,
            subject=subject,
            body_text=body_text,
            body_html=body_html,
            created_at=datetime.now(UTC),
            zone=zone or None,
        )
    )
    enqueue("deliver_mail", str(message_id), job_id=f"mail:{message_id}")
    return message_id


#: What a sent or abandoned message keeps of its body: nothing.
_REDACTED: dict[Any, Any] = {MailMessage.body_text: "", MailMessage.body_html: None}


@job
async def deliver_mail(ctx: dict[str, Any], message_id: str) -> None:
    """Send one queued message, then redact its body; a message already sent, held or given
    up is left alone (at-least-once). Without SMTP (development), hold it unsent."""
    async with global_transaction():
        row = await MailMessage.select().where(MailMessage.id == UUID(message_id)).first()
    if row is None or row["status"] != QUEUED:
        return
    if isinstance(_mailer, OutboxMailer):
        async with global_transaction():
            await MailMessage.update({MailMessage.status: HELD}).where(
                (MailMessage.id == row["id"]) & (MailMessage.status == QUEUED)
            )
        logger.warning("mail %s kept unsent: no JALON_SMTP_URL (development outbox)", row["id"])
        return
    mail = OutgoingMail(row["to_address"], row["subject"], row["body_text"], row["body_html"])
    try:
        await _mailer.send(mail)
    except (OSError, smtplib.SMTPException) as error:
        given_up = row["attempts"] + 1 >= MAX_ATTEMPTS
        failure: dict[Any, Any] = {
            MailMessage.attempts: MailMessage.attempts + 1,
            MailMessage.last_error: str(error),
        }
        if given_up:  # its links are still live: nobody will send them now, nobody keeps them
            failure |= {MailMessage.status: FAILED, MailMessage.redacted_at: datetime.now(UTC)}
            failure |= _REDACTED
        async with global_transaction():
            await MailMessage.update(failure).where(MailMessage.id == row["id"])
        if given_up:
            logger.error("mail %s given up after %d attempts", row["id"], MAX_ATTEMPTS)
            return
        raise
    now = datetime.now(UTC)
    async with global_transaction():
        await MailMessage.update(
            {
                MailMessage.status: SENT,
                MailMessage.sent_at: now,
                MailMessage.attempts: MailMessage.attempts + 1,
                MailMessage.redacted_at: now,
                **_REDACTED,
            }
        ).where(MailMessage.id == row["id"])


#: A message still unsent this long after it was written has lost its delivery job.
STALE_AFTER_MINUTES = 10


@every(minutes=5)
async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Queue again the deliveries that were lost (Redis restarted, process killed before the
    job ran): the outbox row is the truth, the job only a means. How many were queued."""
    async with global_transaction():
        rows = await fetch(
            """SELECT id, attempts FROM mail_message
               WHERE status = 'queued' AND attempts < $2
                 AND created_at < now() - make_interval(mins => $1)
               ORDER BY created_at LIMIT 500""",
            STALE_AFTER_MINUTES,
            MAX_ATTEMPTS,
        )
        for row in rows:
            # A new job id per sweep and attempt count: the lost job's id may linger in Redis.
            enqueue(
                "deliver_mail",
                str(row["id"]),
                job_id=f"mail:{row['id']}:sweep:{row['attempts']}:{ctx.get('job_id', '')}",
            )
    return len(rows)


@every(minutes=60)
async def purge_mail(ctx: dict[str, Any]) -> int:
    """Delete the records of mail written more than `JALON_MAIL_RETENTION_DAYS` ago (through
    the owner's `mail_purge`: the runtime role may not delete). How many were deleted."""
    async with global_transaction():
        rows = await fetch("SELECT mail_purge($1) AS gone", get_settings().mail_retention_days)
    return int(rows[0]["gone"])


@dataclass(frozen=True)
class OutboxMessage:
    """A message of the outbox, as the development outbox page shows it: when it was written
    in the zone of the organization it was written for (`zone`), or in UTC for a message
    outside any organization (None), the zone always named on the page. `mail_message` is a
    global table, so it keeps that zone's name, not a tenant id (migration 2026-12-04T14:30)."""

    id: UUID
    to_address: str
    subject: str
    body_text: str
    created_at: datetime
    sent_at: datetime | None
    status: str
    zone: str | None = None


async def recent_mail(limit: int = 50) -> list[OutboxMessage]:
    """The newest messages that still have their body (held or not yet sent), for the
    development outbox page."""
    async with global_transaction():
        rows = await fetch(
            """SELECT id, to_address, subject, body_text, created_at, sent_at, status, zone
               FROM mail_message WHERE status IN ('queued', 'held')
               ORDER BY created_at DESC LIMIT $1""",
            limit,
        )
    return [OutboxMessage(**row) for row in rows]
