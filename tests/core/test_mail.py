"""Mail: the outbox is written with the change, delivered after commit, through real SMTP."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from core import database, jobs, mail
from core.jobs import InProcessQueue


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
            "SELECT sent_at, attempts, last_error FROM mail_message WHERE id = $1", message_id
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
    queue: InProcessQueue, monkeypatch: pytest.MonkeyPatch
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
    # Delivery later succeeds from the same row.
    await mail.deliver_mail({}, str(message_id))
    assert (await _row(message_id))["sent_at"] is not None


async def test_the_outbox_mailer_keeps_messages_for_the_dev_page(queue: InProcessQueue) -> None:
    mail.configure_mailer(None, "noreply@jalon.example")
    async with database.global_transaction():
        await mail.queue_mail("grace@example.org", "Lien de connexion", "https://…")
    await queue.drain()
    newest = await mail.recent_mail(limit=5)
    assert any(message.subject == "Lien de connexion" for message in newest)


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


async def test_the_sweep_sends_mail_whose_delivery_job_was_lost(queue: InProcessQueue) -> None:
    mail.configure_mailer(None, "noreply@jalon.example")
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


def test_the_worker_schedules_the_sweep() -> None:
    from core.jobs import PERIODIC, worker_cron_jobs

    assert PERIODIC["sweep_outbox"] == set(range(0, 60, 5))
    assert "cron:sweep_outbox" in [c.name for c in worker_cron_jobs()]
