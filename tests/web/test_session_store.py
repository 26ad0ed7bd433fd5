"""The sessions' Redis store (`web.session_store`): one pipelined connection per process, its
replies matched in order, its failures the store being down (`web.sessions.STORE_DOWN`), and a
fresh connection after one is lost."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from web.session_store import PipelinedRedisStore
from web.sessions import STORE_DOWN


def _store(url: str) -> PipelinedRedisStore:
    return PipelinedRedisStore(url, namespace=f"jalon:test-{uuid4().hex[:8]}")


async def test_a_session_is_written_read_and_deleted_under_its_namespace(redis_url: str) -> None:
    store, other = _store(redis_url), _store(redis_url)
    try:
        await store.set("a", b"first", expires_in=60)
        await store.set("b", "second")
        await other.set("a", b"other's")
        assert await store.get("a") == b"first"
        assert await store.get("b") == b"second"
        assert await store.get("missing") is None
        assert await store.exists("a")
        assert not await store.exists("missing")
        assert 0 < (await store.expires_in("a") or 0) <= 60
        assert await store.expires_in("b") is None  # no expiry
        await store.delete("a")
        assert await store.get("a") is None
        await store.delete_all()
        assert await store.get("b") is None
        assert await other.get("a") == b"other's"  # another namespace is left alone
    finally:
        await other.delete_all()
        await store.__aexit__(None, None, None)
        await other.__aexit__(None, None, None)


async def test_commands_sent_at_once_each_get_their_own_reply(redis_url: str) -> None:
    """Many requests share the connection: every reply goes to the command it answers, and
    a request that went away (cancelled) takes no other request's reply."""
    store = _store(redis_url)
    try:
        await asyncio.gather(*(store.set(f"k{i}", f"v{i}") for i in range(200)))
        abandoned = asyncio.ensure_future(store.get("k0"))
        await asyncio.sleep(0)
        abandoned.cancel()
        values = await asyncio.gather(*(store.get(f"k{i}") for i in range(200)))
        assert values == [f"v{i}".encode() for i in range(200)]
    finally:
        await store.delete_all()
        await store.__aexit__(None, None, None)


async def test_an_error_reply_fails_its_command_only(redis_url: str) -> None:
    store = _store(redis_url)
    client = Redis.from_url(redis_url)
    try:
        await client.rpush(f"{store._prefix}list", "x")  # GET on a list: WRONGTYPE
        await store.set("kept", b"yes")
        failed, kept = await asyncio.gather(
            store.get("list"), store.get("kept"), return_exceptions=True
        )
        assert isinstance(failed, ResponseError)
        assert isinstance(failed, STORE_DOWN)
        assert kept == b"yes"
    finally:
        await store.delete_all()
        await store.__aexit__(None, None, None)
        await client.aclose()


async def test_the_database_of_the_url_is_the_one_written(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    store = _store(f"{base}/3")
    client = Redis.from_url(f"{base}/3")
    try:
        await store.set("here", b"3")
        assert await client.get(f"{store._prefix}here") == b"3"
    finally:
        await store.delete_all()
        await store.__aexit__(None, None, None)
        await client.aclose()


@contextlib.asynccontextmanager
async def _fake_redis(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    url: str = "redis://127.0.0.1:{port}/0",
) -> AsyncIterator[PipelinedRedisStore]:
    """A store on a server of the test's own on 127.0.0.1 (`answer` speaks for Redis), at
    `url` with its port filled in; the store and the server are closed on the way out."""
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    store = _store(url.format(port=server.sockets[0].getsockname()[1]))
    try:
        yield store
    finally:
        await store.__aexit__(None, None, None)
        server.close()
        await server.wait_closed()


async def test_a_connection_that_closes_fails_its_commands_and_the_next_one_reconnects() -> None:
    connections = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)
        if connections == 1:
            writer.close()  # the first connection dies with its command unanswered
            return
        writer.write(b"$5\r\nhello\r\n")
        await writer.drain()
        await reader.read(100)
        writer.close()

    async with _fake_redis(answer) as store:
        with pytest.raises(STORE_DOWN):
            await store.get("a")
        assert await store.get("a") == b"hello"
        assert connections == 2


async def test_garbage_from_the_server_fails_cleanly() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # not Redis
        await writer.drain()
        await reader.read(100)
        writer.close()

    async with _fake_redis(answer) as store:
        with pytest.raises(STORE_DOWN):
            await store.get("a")


async def test_nothing_listening_is_the_store_being_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    store = _store(f"redis://127.0.0.1:{port}/0")
    results = await asyncio.gather(store.get("a"), store.get("b"), return_exceptions=True)
    assert all(isinstance(result, STORE_DOWN) for result in results), results


def test_a_tls_url_is_not_taken() -> None:
    with pytest.raises(ValueError, match="redis:// and unix://"):
        PipelinedRedisStore("rediss://127.0.0.1:6380/0", namespace="jalon:session")


async def test_a_request_that_goes_away_while_connecting_fails_no_other() -> None:
    """The connection is opened by a task of its own: the first request to need it may be
    cancelled (its client left) without failing the others waiting for it."""
    authenticated = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"secret\r\n")  # AUTH
        await asyncio.sleep(0.2)
        writer.write(b"+OK\r\n")
        authenticated.set()
        await reader.readuntil(b":a\r\n")  # GET …:a
        writer.write(b"$5\r\nhello\r\n")
        await writer.drain()
        await reader.read(100)
        writer.close()

    async with _fake_redis(answer, "redis://:secret@127.0.0.1:{port}/0") as store:
        first = asyncio.ensure_future(store.get("a"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(store.get("a"))
        await asyncio.sleep(0.05)
        first.cancel()
        assert await second == b"hello"
        assert authenticated.is_set()


async def test_a_redis_that_never_answers_fails_its_commands_in_time() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        await asyncio.sleep(30)  # accepts, reads, never answers
        writer.close()

    async with _fake_redis(answer, "redis://127.0.0.1:{port}/0?socket_timeout=0.2") as store:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.get("a"), timeout=5)


async def test_a_username_is_dropped_for_a_redis_without_users() -> None:
    """Redis before 6 knows only `AUTH password`: the password alone is tried, as redis-py
    does."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readuntil(b"secret\r\n")
        seen.append(first)
        writer.write(b"-ERR wrong number of arguments for 'auth' command\r\n")
        seen.append(await reader.readuntil(b"secret\r\n"))
        writer.write(b"+OK\r\n")
        await reader.readuntil(b":a\r\n")
        writer.write(b"$-1\r\n")
        await writer.drain()
        await reader.read(100)
        writer.close()

    async with _fake_redis(answer, "redis://pat:secret@127.0.0.1:{port}/0") as store:
        assert await store.get("a") is None
        assert b"pat" in seen[0]
        assert b"pat" not in seen[1]
