"""Where sessions live in Redis: one connection per process, its commands pipelined.

Every page reads its session, so a session read is on the hot path of every request (ADR 0023,
addendum 5). redis-py's client borrows a connection from its pool for each command, checks it
(a read with a zero timeout) and gives it back: about 90 µs of CPU per GET on this machine,
where writing the command and reading its reply costs about 45. Here every request of the
process writes its command on one connection as it comes, and the replies, which Redis sends
in order, are handed out in order (a FIFO of futures), parsed by hiredis (redis-py's parser).

Failures are plain: a connection that closes fails the commands waiting on it with
`ConnectionError`; the next command connects again. Nothing is retried here: the sessions
middleware (`web.sessions`) serves its recent copies while the store is down, as before.

`rediss://` (TLS) URLs keep Litestar's `RedisStore` (`web.front.session_store`).
"""

from __future__ import annotations

import asyncio
import collections
from datetime import timedelta
from typing import Any, cast

import hiredis
from litestar.stores.base import Store
from redis.asyncio.connection import parse_url
from redis.exceptions import ResponseError

#: How long connecting to Redis may take before the command fails (it is served from the
#: middleware's copies then).
CONNECT_TIMEOUT_SECONDS = 5.0

_Reply = bytes | int | list[Any] | None


class _Connection(asyncio.Protocol):
    """One connection to Redis: commands written as they come, replies matched in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[asyncio.Future[_Reply]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but have its methods
        self._transport = cast(asyncio.Transport, transport)

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
            future = self._waiting.popleft()
            if future.done():  # its request went away (cancelled): the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"the Redis connection closed ({exc})"))

    def send(self, *args: bytes | str | int) -> asyncio.Future[_Reply]:
        if self.closed or self._transport is None or self._transport.is_closing():
            raise ConnectionError("the Redis connection is closed")
        self._transport.write(hiredis.pack_command(args))  # type: ignore[arg-type]  # stub: 1-tuple
        future: asyncio.Future[_Reply] = self.loop.create_future()
        self._waiting.append(future)
        return future

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.connection_lost(None)


class PipelinedRedisStore(Store):
    """A Litestar store on one pipelined Redis connection (per process and event loop), keys
    under `namespace:`, for `redis://` and `unix://` URLs."""

    def __init__(self, url: str, namespace: str) -> None:
        self._options = parse_url(url)
        if "connection_class" in self._options and "path" not in self._options:
            raise ValueError("PipelinedRedisStore takes redis:// and unix:// URLs only")
        self._prefix = f"{namespace}:"
        self._connection: _Connection | None = None
        self._opening: asyncio.Future[_Connection] | None = None

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
        """The connection, opened once for every command that needs it at the same time."""
        loop = asyncio.get_running_loop()
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = self._opening = loop.create_future()
            try:
                connection = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT_SECONDS)
            except BaseException as error:
                self._opening = None
                # those waiting on it fail as the store being down, never as cancelled
                failure = error if isinstance(error, Exception) else ConnectionError(error)
                opening.set_exception(failure)
                opening.exception()  # retrieved: no "never retrieved" warning when alone
                raise
            self._connection = connection
            self._opening = None
            opening.set_result(connection)
            return connection
        return await asyncio.shield(opening)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options
        if "path" in options:
            _, connection = await loop.create_unix_connection(_Connection, options["path"])
        else:
            _, connection = await loop.create_connection(
                _Connection, options.get("host", "localhost"), options.get("port", 6379)
            )
        try:
            if options.get("password"):
                username = options.get("username")
                credentials = (
                    (username, options["password"]) if username else (options["password"],)
                )
                await connection.send("AUTH", *credentials)
            if options.get("db"):
                await connection.send("SELECT", options["db"])
        except BaseException:
            connection.close()
            raise
        return connection

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
        if self._connection is not None:
            self._connection.close()
            self._connection = None
