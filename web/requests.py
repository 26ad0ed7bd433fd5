"""The request class of every front: JSON and MessagePack bodies are decoded as Litestar
decodes them, but a document nested deeper than any of ours is refused with a 400 and a
message, before the decoder recurses into it (msgspec raises `RecursionError` past about
a thousand levels, and a deep document that decodes would recurse again in whatever walks it:
validation, logging, PostgreSQL's jsonb)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

from core.errors import UserError

#: Deeper than any document Jalon's API, SCIM or webhooks take (SCIM's patch operations are
#: the deepest, at five levels).
MAX_JSON_DEPTH = 32
TOO_DEEP_MESSAGE = "The JSON document is nested too deeply ({max} levels at most)."

#: A JSON string, escapes included: its brackets are text, not structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class TooDeep(UserError):
    """A request body nested beyond `MAX_JSON_DEPTH` (400)."""

    status_code = 400

    def __init__(self) -> None:
        super().__init__(TOO_DEEP_MESSAGE, max=MAX_JSON_DEPTH)


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `body` opens more than `limit` arrays or objects inside each
    other. Malformed text is left to the decoder, which refuses it with its own message."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case, decided without a scan
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class JalonRequest(Request[Any, Any, Any]):
    """A Litestar request whose JSON and MessagePack bodies are decoded within a depth."""

    async def json(self) -> Any:
        """The decoded JSON body; `TooDeep` (400) for a document nested too deeply."""
        undecoded = self._json is Empty and self._connection_state.json is Empty
        if undecoded and json_depth_exceeds(await self.body()):
            raise TooDeep
        try:
            return await super().json()
        except RecursionError:
            raise TooDeep from None

    async def msgpack(self) -> Any:
        """The decoded MessagePack body; `TooDeep` (400) for one the decoder cannot descend."""
        try:
            return await super().msgpack()
        except RecursionError:
            raise TooDeep from None


#: The scope key of the TCP peer as the server saw it, before a trusted proxy's
#: X-Forwarded-For replaced the client (`keeping_the_peer`).
PEER_KEY = "jalon_peer"


def keeping_the_peer(app: ASGIApp) -> ASGIApp:
    """`app` with each request's TCP peer kept in its scope (`PEER_KEY`): put it outside
    the proxy-headers middleware, which replaces the client with X-Forwarded-For's."""

    async def kept(scope: Scope, receive: Receive, send: Send) -> None:
        scope[PEER_KEY] = scope.get("client")  # type: ignore[literal-required]
        await app(scope, receive, send)

    return kept


def connection_peer(request: Request[Any, Any, Any]) -> tuple[str, int] | None:
    """The TCP peer of the connection the request came on (the client's address behind no
    proxy): what `keeping_the_peer` kept, else the request's client."""
    peer: Any = request.scope.get(PEER_KEY) or request.scope.get("client")
    return (str(peer[0]), int(peer[1])) if peer else None
