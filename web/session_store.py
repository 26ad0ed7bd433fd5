"""Where sessions live in Redis: one connection per process, its commands pipelined.

Every page reads its session, so a session read is on the hot path of every request (ADR 0023,
addendum 5). redis-py's client borrows a connection from its pool for each command, checks it
(a read with a zero timeout) and gives it back: about 90 µs of CPU per GET on this machine,
where writing the command and reading its reply costs about 45. Here every request of the
process writes its command on one connection as it comes, and the replies, which Redis sends
in order, are handed out in order (a FIFO of futures), parsed by hiredis (redis-py's parser).

Failures are plain: a connection that closes fails the commands waiting on it with
`ConnectionError`, and one whose oldest command waits longer than its timeout (a Redis that
accepts and never answers) is closed, its commands failing with `TimeoutError`; the next
command connects again. Nothing is retried here: the sessions middleware (`web.sessions`)
serves its recent copies while the store is down, as before. A URL's `socket_timeout` and
`socket_connect_timeout` are honoured (5 seconds each otherwise).

`rediss://` (TLS) URLs keep Litestar's `RedisStore` (`web.front.session_store`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from datetime import timedelta
from typing import Any, cast

import hiredis
from litestar.stores.base import Store
from redis.asyncio.connection import parse_url
from redis.exceptions import ResponseError

#: How long connecting to Redis, and a command's reply, may take before the command fails
#: (the session is served from the middleware's copies then), unless the URL says otherwise.
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 5.0
#: How often a connection looks for a command waiting longer than its timeout.
WATCH_SECONDS = 1.0

_Reply = bytes | int | list[Any] | None


class _Connection(asyncio.Protocol):
    """One connection to Redis: commands written as they come, replies matched in order."""

    def __init__(self, timeout: float) -> None:
        self._reader = hiredis.Reader()
        # each command's reply to come, and when the command was sent
        self._waiting: collections.deque[tuple[asyncio.Future[_Reply], float]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._watch = self.loop.call_later(WATCH_SECONDS, self._check_replies)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but have its methods
        self._transport = cast(asyncio.Transport, transport)

    def _check_replies(self) -> None:
        """Close the connection when its oldest command has waited longer than the timeout: a
        Redis that accepts and does not answer fails the requests, rather than hangs them."""
        if self.closed:
            return
        if self._waiting and self.loop.time() - self._waiting[0][1] > self._timeout:
            self._fail(TimeoutError(f"Redis did not answer within {self._timeout:g} s"))
            return
        self._watch = self.loop.call_later(WATCH_SECONDS, self._check_replies)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError:
                self.close()  # not Redis speaking, or a stream out of step: start again
                return
            if reply is False:  # no whole reply yet (RESP2 has no false)
                return
            if not self._waiting:
                self.close()  # a reply nobody asked for: out of step
                return
            future, _ = self._waiting.popleft()
            if future.done():  # its request went away (cancelled): the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the Redis connection closed ({exc})"))

    def _fail(self, error: Exception) -> None:
        """Close, failing every command still waiting with `error`."""
        self.closed = True
        self._watch.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, *args: bytes | str | int) -> asyncio.Future[_Reply]:
        if self.closed or self._transport is None or self._transport.is_closing():
            raise ConnectionError("the Redis connection is closed")
        self._transport.write(hiredis.pack_command(args))  # type: ignore[arg-type]  # stub: 1-tuple
        future: asyncio.Future[_Reply] = self.loop.create_future()
        self._waiting.append((future, self.loop.time()))
        return future

    def close(self) -> None:
        self._fail(ConnectionError("the Redis connection was closed"))


class PipelinedRedisStore(Store):
    """A Litestar store on one pipelined Redis connection (per process and event loop), keys
    under `namespace:`, for `redis://` and `unix://` URLs."""

    def __init__(self, url: str, namespace: str) -> None:
        self._options: dict[str, Any] = dict(parse_url(url))
        if "connection_class" in self._options and "path" not in self._options:
            raise ValueError("PipelinedRedisStore takes redis:// and unix:// URLs only")
        self._prefix = f"{namespace}:"
        self._timeout = float(self._options.get("socket_timeout") or COMMAND_TIMEOUT_SECONDS)
        self._connect_timeout = float(
            self._options.get("socket_connect_timeout") or CONNECT_TIMEOUT_SECONDS
        )
        self._connection: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def _command(self, *args: bytes | str | int) -> _Reply:
        connection = self._connection
        if (
            connection is None
            or connection.closed
            or connection.loop is not asyncio.get_running_loop()
        ):
            connection = await self._connect()
        return await connection.send(*args)

    async def _connect(self) -> _Connection:
        """The connection, opened by a task of its own that every command needing it at the
        same time waits for: a caller that goes away (cancelled) fails no other."""
        loop = asyncio.get_running_loop()
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            self._drop(self._connection)  # another event loop's (tests run several)
            self._connection = None
            opening = self._opening = loop.create_task(self._open())
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    def _opened(self, opening: asyncio.Task[_Connection]) -> None:
        if self._opening is opening:
            self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self._connection = opening.result()

    @staticmethod
    def _drop(connection: _Connection | None) -> None:
        """Close `connection` on its own event loop, if that loop still runs."""
        if connection is None or connection.closed:
            return
        with contextlib.suppress(RuntimeError):  # its loop is closed: so is the socket's use
            if connection.loop is asyncio.get_running_loop():
                connection.close()
            else:
                connection.loop.call_soon_threadsafe(connection.close)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options

        def protocol() -> _Connection:
            return _Connection(self._timeout)

        async with asyncio.timeout(self._connect_timeout):
            if "path" in options:
                _, connection = await loop.create_unix_connection(protocol, options["path"])
            else:
                _, connection = await loop.create_connection(
                    protocol, options.get("host", "localhost"), options.get("port", 6379)
                )
            try:
                await self._authenticate(connection)
                if options.get("db"):
                    await connection.send("SELECT", options["db"])
            except BaseException:
                connection.close()
                raise
        return connection

    async def _authenticate(self, connection: _Connection) -> None:
        password, username = self._options.get("password"), self._options.get("username")
        if not password:
            return
        if username:
            try:
                await connection.send("AUTH", username, password)
                return
            except ResponseError as error:
                if "wrong number of arguments" not in str(error):
                    raise
                # a Redis before 6 has no users: the password alone, as redis-py does
        await connection.send("AUTH", password)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else value
        if expires_in is None:
            await self._command("SET", self._key(key), data)
            return
        seconds = (
            int(expires_in.total_seconds()) if isinstance(expires_in, timedelta) else expires_in
        )
        await self._command("SET", self._key(key), data, "EX", seconds)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if renew_for is not None:
            raise NotImplementedError("sessions are not renewed on reading")
        reply = await self._command("GET", self._key(key))
        return reply if isinstance(reply, bytes) else None

    async def delete(self, key: str) -> None:
        await self._command("DEL", self._key(key))

    async def delete_all(self) -> None:
        cursor: bytes | int = 0
        while True:
            reply = await self._command("SCAN", cursor, "MATCH", f"{self._prefix}*", "COUNT", 500)
            assert isinstance(reply, list)
            cursor, keys = reply
            if keys:
                await self._command("DEL", *keys)
            if int(cursor) == 0:
                return

    async def exists(self, key: str) -> bool:
        return await self._command("EXISTS", self._key(key)) == 1

    async def expires_in(self, key: str) -> int | None:
        ttl = await self._command("TTL", self._key(key))
        return None if not isinstance(ttl, int) or ttl < 0 else ttl

    async def __aexit__(self, *exc: object) -> None:
        """Close the connection (the application's shutdown)."""
        self._drop(self._connection)
        self._connection = None
