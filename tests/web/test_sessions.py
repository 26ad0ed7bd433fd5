"""Server-side sessions (web.sessions): a request that was running while the session was
ended (signed out, rotated) does not bring it back when it saves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from litestar.middleware import DefineMiddleware
from litestar.stores.memory import MemoryStore

from web.sessions import COOKIE, SessionMiddleware, get_session

STORE = MemoryStore()
#: Lets the test hold a request between loading its session and saving it.
GATE: dict[str, asyncio.Event] = {}


@post("/sign-in")
async def sign_in(request: Request[Any, Any, Any]) -> str:
    session = get_session(request.scope)
    session.rotate()
    session["user_id"] = "someone"
    return "in"


@get("/slow")
async def slow(request: Request[Any, Any, Any]) -> str:
    session = get_session(request.scope)
    GATE["loaded"].set()
    await GATE["go"].wait()
    session["seen"] = 1  # what the staff guard does every 30 s
    return str(session.get("user_id"))


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> str:
    session = get_session(request.scope)
    session.clear()
    session.rotate()
    return "out"


@get("/who")
async def who(request: Request[Any, Any, Any]) -> str:
    return str(get_session(request.scope).get("user_id"))


@get("/touch")
async def touch(request: Request[Any, Any, Any]) -> str:
    get_session(request.scope)["seen"] = 2
    return "touched"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Litestar(
        route_handlers=[sign_in, slow, logout, who, touch],
        middleware=[DefineMiddleware(SessionMiddleware, store=STORE, max_age=3600, secure=False)],
    )
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_a_request_running_during_sign_out_does_not_bring_the_session_back(
    client: httpx.AsyncClient,
) -> None:
    GATE.update(loaded=asyncio.Event(), go=asyncio.Event())
    await client.post("/sign-in")
    old_id = client.cookies[COOKIE]
    assert (await client.get("/who")).text == "someone"
    slow_one = asyncio.create_task(client.get("/slow"))  # sends the signed-in cookie
    await asyncio.wait_for(GATE["loaded"].wait(), 10)
    out = await asyncio.wait_for(client.post("/logout"), 10)
    assert out.status_code == 201
    GATE["go"].set()
    late = await asyncio.wait_for(slow_one, 10)
    assert late.status_code == 200
    assert COOKIE not in late.headers.get("set-cookie", "")
    assert not await STORE.exists(old_id)
    # the old cookie, replayed, is signed out
    client.cookies.clear()
    replayed = await client.get("/who", headers={"cookie": f"{COOKIE}={old_id}"})
    assert replayed.text == "None"


async def test_a_live_session_is_still_saved(client: httpx.AsyncClient) -> None:
    await client.post("/sign-in")
    session_id = client.cookies[COOKIE]
    touched = await client.get("/touch")
    assert COOKIE in touched.headers["set-cookie"]
    raw = await STORE.get(session_id)
    assert raw is not None
    assert b'"seen": 2' in raw
