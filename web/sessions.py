"""Server-side sessions: an opaque random id in a cookie, the data in a Litestar store
(Redis when configured, files in the data directory otherwise).

Written here rather than taken from Litestar because a session must get a new id when its
privilege changes (sign-in, sign-out): that defeats session fixation. A request saves its
session whole, so one that was running while the session was ended (sign-out, a rotation)
must not write it back: a session loaded under an id is saved only while that id still exists.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.stores.base import Store
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

COOKIE = "jalon_session"

log = logging.getLogger(__name__)

#: What a session store that does not answer (Redis stopped) raises.
STORE_DOWN = (OSError, RedisError, TimeoutError)
#: Sessions this process read or wrote lately, kept to serve them while the store is down.
LOCAL_COPIES = 20_000
#: The response header telling that sessions are served from this process's copy.
DEGRADED_HEADER = "x-jalon-degraded"


class Session(dict[str, Any]):
    """The session's data; `rotate()` gives it a new id, `clear()` empties it."""

    def __init__(self, session_id: str | None, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.session_id = session_id
        self.previous_id: str | None = None
        self.modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.modified = True
        return super().pop(key, default)

    def clear(self) -> None:
        self.modified = True
        super().clear()

    def rotate(self) -> None:
        """Move the data to a fresh id; the old one is deleted when the response is sent."""
        self.previous_id = self.session_id
        self.session_id = None
        self.modified = True


class SessionMiddleware:
    """Loads `scope["jalon_session"]` before the app and saves it after."""

    def __init__(self, app: ASGIApp, store: Store, max_age: int, secure: bool) -> None:
        self.app = app
        self.store = store
        self.max_age = max_age
        self.secure = secure
        # While the store (Redis) is down, the sessions this process saw lately still work
        # here: a participant keeps answering; another process has to sign them in again.
        self._copies: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._degraded = False

    def _keep(self, session_id: str, raw: bytes) -> None:
        self._copies[session_id] = (raw, time.monotonic() + self.max_age)
        self._copies.move_to_end(session_id)
        while len(self._copies) > LOCAL_COPIES:
            self._copies.popitem(last=False)

    def _copy(self, session_id: str) -> bytes | None:
        found = self._copies.get(session_id)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def _store_down(self, error: BaseException) -> None:
        if not self._degraded:
            log.error("session store unavailable (%s): serving this process's copies", error)
        self._degraded = True

    async def _get(self, session_id: str) -> bytes | None:
        try:
            raw = await self.store.get(session_id)
        except STORE_DOWN as error:
            self._store_down(error)
            return self._copy(session_id)
        if self._degraded:
            log.warning("session store available again")
            self._degraded = False
        if raw:
            self._keep(session_id, raw)
        else:
            self._copies.pop(session_id, None)
        return raw

    async def _exists(self, session_id: str) -> bool:
        try:
            return await self.store.exists(session_id)
        except STORE_DOWN as error:
            self._store_down(error)
            return session_id in self._copies

    async def _delete(self, session_id: str) -> None:
        self._copies.pop(session_id, None)
        try:
            await self.store.delete(session_id)
        except STORE_DOWN as error:
            self._store_down(error)

    async def _set(self, session_id: str, raw: bytes) -> None:
        self._keep(session_id, raw)
        try:
            await self.store.set(session_id, raw, expires_in=self.max_age)
        except STORE_DOWN as error:
            self._store_down(error)

    @staticmethod
    def _cookie_value(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    if key == COOKIE and 40 <= len(val) <= 100 and val.isalnum():
                        return val
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        session_id = self._cookie_value(scope)
        data: dict[str, Any] = {}
        if session_id:
            raw = await self._get(session_id)
            if raw:
                data = json.loads(raw)
            else:
                session_id = None
        session = Session(session_id, data)
        scope["jalon_session"] = session  # type: ignore[typeddict-unknown-key]
        # Pages say it too (`web.pages.render`): the person knows why they may be signed out.
        scope["jalon_sessions_degraded"] = self._degraded  # type: ignore[typeddict-unknown-key]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                if session.modified:
                    await self._save(session, message)
                if self._degraded:
                    # Said on every response while it lasts: a page can tell the person.
                    MutableScopeHeaders.from_message(message).add(DEGRADED_HEADER, "sessions")
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _save(self, session: Session, message: Message) -> None:
        headers = MutableScopeHeaders.from_message(message)
        if session.previous_id:
            await self._delete(session.previous_id)
        if not session:
            if session.session_id:
                await self._delete(session.session_id)
            cookie = Cookie(
                key=COOKIE,
                value="",
                max_age=0,
                path="/",
                httponly=True,
                secure=self.secure,
                samesite="lax",
            )
            headers.add("set-cookie", cookie.to_header(header=""))
            return
        if session.session_id is None:
            session.session_id = secrets.token_hex(32)
        elif not await self._exists(session.session_id):
            # Loaded under this id, and the id is gone since: a sign-out (or a rotation) ran
            # while this request did. Writing the data back would bring the session back to
            # life; the request's changes are dropped instead, and no cookie is set.
            return
        await self._set(session.session_id, json.dumps(session, default=str).encode())
        cookie = Cookie(
            key=COOKIE,
            value=session.session_id,
            max_age=self.max_age,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )
        headers.add("set-cookie", cookie.to_header(header=""))


def get_session(scope: Scope) -> Session:
    """The request's session (the middleware always sets one)."""
    session: Session = scope["jalon_session"]  # type: ignore[typeddict-item]
    return session
