"""Fixtures of the webhook tests: jobs in this process, a real receiver on 127.0.0.1, and the
in-process sender for the tests that need no receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from core import jobs
from core.jobs import InProcessQueue
from tenants.webhooks.delivery import InProcessSender, get_sender, use_sender
from tests.tenants.receiver import Receiver, receiving


@pytest.fixture
def queue(db: str) -> Iterator[InProcessQueue]:
    """Jobs in this process (the HTTP tests' app may have left a Redis queue in place)."""
    previous = jobs.get_queue()
    in_process = jobs.configure_queue(None)
    assert isinstance(in_process, InProcessQueue)
    yield in_process
    jobs.use_queue(previous)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as listening:
        yield listening


@pytest.fixture
def sender() -> Iterator[InProcessSender]:
    """Deliveries go to this in-process sender for the test, then back to the network."""
    previous = get_sender()
    in_process = InProcessSender()
    use_sender(in_process)
    yield in_process
    use_sender(previous)
