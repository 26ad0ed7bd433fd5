"""Mail: the outbox is written with the change, delivered after commit, through real SMTP; a
body is kept only until sent, a record only for the retention, and without SMTP (development)
messages are held unsent for the development outbox."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from core import database, jobs, mail
from core.jobs import InProcessQueue
from core.settings import get_settings


def _free_port() -> int:
    """A port nothing listens on (the OS just handed it out)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    """A real SMTP server on 127.0.0.1, for this test only."""
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
        mail.configure_mailer(None, "noreply@jalon.example")


@pytest.fixture
def queue(db: str) -> InProcessQueue:
    in_process = jobs.configure_queue(None)
    assert isinstance(in_process, InProcessQueue)
    return in_process


async def _row(message_id: UUID) -> dict[str, Any]:
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT sent_at, attempts, last_error, status, body_text, body_html, redacted_at,
                      to_address, subject
               FROM mail_message WHERE id = $1""",
            message_id,
        )
    return dict(rows[0])


async def test_a_queued_message_is_sent_over_smtp_after_commit(
    smtp_server: tuple[_Inbox, int], queue: InProcessQueue
) -> None:
    inbox, port = smtp_server
    mail.configure_mailer(f"smtp://127.0.0.1:{port}", "Jalon <noreply@jalon.example>")
    async with database.global_transaction():
        message_id = await mail.queue_mail(
            "ada@example.org", "Bienvenue", "Texte brut", "<p>HTML</p>"
        )
    await queue.drain()
    [received] = inbox.messages
    assert received["To"] == "ada@example.org"
    assert received["Subject"] == "Bienvenue"
    assert received.is_multipart()  # text and HTML alternatives
    row = await _row(message_id)
    assert row["sent_at"] is not None
    assert row["attempts"] == 1
    # Sent: the body (and its live links) is gone, the metadata stays.
    assert row["status"] == "sent"
    assert (row["body_text"], row["body_html"]) == ("", None)
    assert row["redacted_at"] == row["sent_at"]
    assert (row["to_address"], row["subject"]) == ("ada@example.org", "Bienvenue")
    assert all(message.id != message_id for message in await mail.recent_mail())


async def test_a_rolled_back_change_sends_no_mail(
    smtp_server: tuple[_Inbox, int], queue: InProcessQueue
) -> None:
    inbox, port = smtp_server
    mail.configure_mailer(f"smtp://127.0.0.1:{port}", "noreply@jalon.example")
    with pytest.raises(RuntimeError):  # noqa: PT012 -- the failure is inside the transaction
        async with database.global_transaction():
            await mail.queue_mail("ada@example.org", "Never", "sent")
            raise RuntimeError("the change failed")
    await queue.drain()
    assert inbox.messages == []
    async with database.global_transaction():
        kept = await database.fetch("SELECT 1 FROM mail_message WHERE subject = 'Never'")
    assert kept == []


async def test_queue_mail_refuses_to_run_on_its_own(db: str) -> None:
    with pytest.raises(RuntimeError, match="needs an open transaction"):
        await mail.queue_mail("ada@example.org", "Loose", "no transaction")
    async with database.global_transaction():
        kept = await database.fetch("SELECT 1 FROM mail_message WHERE subject = 'Loose'")
    assert kept == []


async def test_an_unreachable_smtp_server_is_recorded_and_retried(
    smtp_server: tuple[_Inbox, int], queue: InProcessQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "backoff_seconds", lambda job_try: 0.0)
    mail.configure_mailer(f"smtp://127.0.0.1:{_free_port()}", "noreply@jalon.example")
    try:
        async with database.global_transaction():
            message_id = await mail.queue_mail("ada@example.org", "Lost?", "No: kept")
        await queue.drain()
    finally:
        mail.configure_mailer(None, "noreply@jalon.example")
    row = await _row(message_id)
    assert row["sent_at"] is None  # kept in the outbox, not lost
    assert row["attempts"] == jobs.MAX_TRIES
    assert row["last_error"]
    assert (row["status"], row["body_text"]) == ("queued", "No: kept")
    # Delivery later succeeds from the same row.
    inbox, port = smtp_server
    mail.configure_mailer(f"smtp://127.0.0.1:{port}", "noreply@jalon.example")
    await mail.deliver_mail({}, str(message_id))
    assert (await _row(message_id))["sent_at"] is not None
    [received] = inbox.messages
    assert "No: kept" in received.as_string()


async def test_a_message_given_up_keeps_no_body(
    queue: InProcessQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "backoff_seconds", lambda job_try: 0.0)
    mail.configure_mailer(f"smtp://127.0.0.1:{_free_port()}", "noreply@jalon.example")
    try:
        async with database.global_transaction():
            message_id = await mail.queue_mail("ada@example.org", "Reset", "/password/reset/LIVE")
            await database.execute(
                "UPDATE mail_message SET attempts = $2 WHERE id = $1",
                message_id,
                mail.MAX_ATTEMPTS - 1,
            )
        await queue.drain()
    finally:
        mail.configure_mailer(None, "noreply@jalon.example")
    row = await _row(message_id)
    assert (row["status"], row["body_text"], row["sent_at"]) == ("failed", "", None)
    assert row["attempts"] == mail.MAX_ATTEMPTS
    assert row["redacted_at"] is not None
    await mail.deliver_mail({}, str(message_id))  # a stray job changes nothing
    assert (await _row(message_id))["attempts"] == mail.MAX_ATTEMPTS


async def test_without_smtp_messages_are_held_unsent_for_the_dev_page(
    queue: InProcessQueue, caplog: pytest.LogCaptureFixture
) -> None:
    mail.configure_mailer(None, "noreply@jalon.example")
    async with database.global_transaction():
        message_id = await mail.queue_mail("grace@example.org", "Lien de connexion", "https://…")
    with caplog.at_level("WARNING", logger="jalon.mail"):
        await queue.drain()
    row = await _row(message_id)
    assert (row["status"], row["sent_at"], row["body_text"]) == ("held", None, "https://…")
    assert f"mail {message_id} kept unsent" in caplog.text
    newest = await mail.recent_mail(limit=5)
    assert any(message.id == message_id for message in newest)
    # Held is not lost: the sweep does not send it again and again.
    async with database.global_transaction():
        await database.execute(
            "UPDATE mail_message SET created_at = now() - interval '1 hour' WHERE id = $1",
            message_id,
        )
    await mail.sweep_outbox({"job_id": "held"})
    await queue.drain()
    assert (await _row(message_id))["attempts"] == 0


async def test_old_records_are_purged_and_only_through_the_owners_function(
    queue: InProcessQueue,
) -> None:
    async with database.global_transaction():
        old = await mail.queue_mail("old@example.org", "Old", "body")
        recent = await mail.queue_mail("new@example.org", "New", "body")
        await database.execute(
            "UPDATE mail_message SET created_at = now() - make_interval(days => $2) WHERE id = $1",
            old,
            get_settings().mail_retention_days + 1,
        )
    await queue.drain()
    assert await mail.purge_mail({}) >= 1
    async with database.global_transaction():
        left = {r["id"] for r in await database.fetch("SELECT id FROM mail_message")}
    assert old not in left
    assert recent in left
    # The runtime role sends mail; it deletes none, and the table's grants say so.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.global_transaction():
            await database.execute("DELETE FROM mail_message WHERE id = $1", recent)
    async with database.global_transaction():
        [grants] = await database.fetch(
            """SELECT has_table_privilege('mail_message', 'SELECT') AS s,
                      has_table_privilege('mail_message', 'INSERT') AS i,
                      has_table_privilege('mail_message', 'UPDATE') AS u,
                      has_table_privilege('mail_message', 'DELETE') AS d,
                      has_table_privilege('mail_message', 'TRUNCATE') AS t"""
        )
    assert dict(grants) == {"s": True, "i": True, "u": True, "d": False, "t": False}


async def test_credentials_are_never_sent_to_a_server_without_tls(
    smtp_server: tuple[_Inbox, int], queue: InProcessQueue
) -> None:
    inbox, port = smtp_server
    mailer = mail.SmtpMailer(f"smtp://user:secret@127.0.0.1:{port}", "noreply@jalon.example")
    with pytest.raises(smtplib.SMTPNotSupportedError):
        await mailer.send(mail.OutgoingMail("ada@example.org", "Hi", "text", None))
    assert inbox.messages == []


class _LostJobs:
    """A queue that loses what it is given, as a Redis restarted without persistence."""

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_the_sweep_sends_mail_whose_delivery_job_was_lost(
    smtp_server: tuple[_Inbox, int], queue: InProcessQueue
) -> None:
    inbox, port = smtp_server
    mail.configure_mailer(f"smtp://127.0.0.1:{port}", "noreply@jalon.example")
    jobs.use_queue(_LostJobs())
    try:
        async with database.global_transaction():
            message_id = await mail.queue_mail("ada@example.org", "Lost job", "body")
            await database.execute(
                "UPDATE mail_message SET created_at = now() - interval '1 hour' WHERE id = $1",
                message_id,
            )
    finally:
        jobs.use_queue(queue)
    assert (await _row(message_id))["sent_at"] is None
    assert await mail.sweep_outbox({"job_id": "sweep-test"}) >= 1
    await queue.drain()
    assert (await _row(message_id))["sent_at"] is not None
    # Sent once. (Mail other tests queued more than ten minutes earlier in a slow run is as
    # stale, and goes out with it.)
    assert [m["Subject"] for m in inbox.messages if m["To"] == "ada@example.org"] == ["Lost job"]


def test_the_worker_schedules_the_sweep() -> None:
    from core.jobs import PERIODIC, worker_cron_jobs

    assert PERIODIC["sweep_outbox"] == set(range(0, 60, 5))
    assert "cron:sweep_outbox" in [c.name for c in worker_cron_jobs()]
    assert PERIODIC["purge_mail"] == {0}
