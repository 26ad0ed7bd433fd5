"""No input is a 500 (issue 13 §2.4): every form, query string, path parameter and JSON body
of the application is fed NUL, overlong, deeply nested and out-of-range values, signed in as
the owner of an organization that holds one object of each kind (the isolation matrix's
`victim`), and never answers a server error (the client's hook fails any 5xx).

What is fed, and where it comes from:
- forms: found by crawling the owner's pages from the console, account and results pages
  (real ids, real defaults); each field gets NUL, an overlong text and one out-of-range value
  (a huge number, -1, a day in year 1 or 9999, 1e309: each in turn), the others keep their
  defaults;
- query strings: every GET route of the route table (a crawled URL when there is one, made-up
  parameters otherwise) gets NUL, a long text and one out-of-range value in every query
  parameter its handler declares and in the names our pages filter by, at once, and bytes
  that are not UTF-8;
- path parameters: every route with one gets NUL, a huge number and a byte that is not UTF-8;
- JSON: every write of `/api/v1` and `/scim/v2` gets a valid body with each top-level field
  replaced by each bad value; a route without a body here fails the test until it has one.

The back office (`/admin`) has its own matrix of refusals (tests/admin/test_admin_isolation.py);
its forms are crawled here too, signed in as staff, when the owner is staff (not here).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from core import database
from tests.api import test_isolation
from tests.api.conftest import Browser, bearer, browser_on, issue_token
from tests.api.test_isolation import Victim
from tests.db import as_tenant

victim = test_isolation.victim

NUL = "a\x00b"
OVERLONG = "x" * 100_000
#: What a form field or a query parameter receives, one at a time.
TEXT_VALUES = {
    "nul": NUL,
    "overlong": OVERLONG,
    "huge": "9" * 40,
    "negative": "-1",
    "year-1": "0001-01-01",
    "year-9999": "9999-12-31",
    "float": "1e309",
}
#: Sent to every field: the values most likely to reach the database.
ALWAYS = ("nul", "overlong")
#: Out of range: one of them per field, in turn (the run stays under a minute).
IN_TURN = ("huge", "negative", "year-1", "year-9999", "float")


def _sample(turn: int) -> list[str]:
    """The values one field receives: NUL, overlong, and the out-of-range value of `turn`."""
    return [TEXT_VALUES[kind] for kind in (*ALWAYS, IN_TURN[turn % len(IN_TURN)])]


#: What a JSON field receives, one at a time.
JSON_VALUES: dict[str, Any] = {
    "nul": NUL,
    "overlong": OVERLONG,
    "huge": 10**40,
    "negative": -1,
    "year-1": "0001-01-01T00:00:00Z",
    "year-9999": "9999-12-31T23:59:59Z",
    "nested": json.loads("[" * 40 + "]" * 40),  # within the limit, still deep
    "null": None,
    "object": {"a": NUL},
}
#: The query parameters our pages filter and page by, besides those handlers declare.
QUERY_NAMES = (
    "cursor",
    "limit",
    "page",
    "since",
    "until",
    "search",
    "status",
    "group",
    "action",
    "actor",
    "next",
    "email",
    "step",
    "format",
    "sort",
)
#: The longest query value sent: names x length stays under httpx's 64 KiB URL.
QUERY_MAX = 2_000
#: Forms that would end the session or take the owner's powers away: the rest of the crawl
#: needs them. Their fields are ordinary text, fed elsewhere.
SKIPPED_FORMS = re.compile(r"^/(logout|account/delete)|/leave$")
#: Pages the crawl starts from, and how many it reads at most.
START = ("/o/{slug}", "/account", "/o/", "/me/results", "/")
MAX_PAGES = 150
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    """The forms of a page with their fields' default values, and the page's links."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"])
        elif tag == "form":
            method = a.get("method", "get").upper()
            self.forms.append(Form(method, a.get("action") or self.page))
        elif self.forms and tag in ("input", "textarea", "select") and a.get("name"):
            name, kind = a["name"], a.get("type", "text")
            fields = self.forms[-1].fields
            if kind in ("checkbox", "radio") and "checked" not in a and name in fields:
                return
            if kind == "file":
                return
            fields[name] = a.get("value", "")
            self._select = name if tag == "select" else None
        elif tag == "option" and self._select and self.forms:
            fields = self.forms[-1].fields
            if not fields.get(self._select) or "selected" in a:
                fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _pattern(path: str) -> str:
    """A path with its ids and codes blanked: one form or page per route is enough."""
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{id}", path)
    return re.sub(r"/\d+(?=/|$)", "/{n}", path)


@dataclass
class Crawl:
    pages: dict[str, str] = field(default_factory=dict)  # pattern -> a real URL
    forms: dict[tuple[str, str, frozenset[str]], Form] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # every GET form's fields


async def crawl_pages(
    browser: Browser, starts: Sequence[str], within: tuple[str, ...], skipped: re.Pattern[str]
) -> Crawl:
    """The pages reachable from `starts` by links under `within` (one per route pattern),
    their forms, and the names their GET forms filter by."""
    crawl = Crawl()
    queue = list(starts)
    seen: set[str] = set()
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        pattern = _pattern(urlsplit(url).path)
        if pattern in seen or skipped.search(urlsplit(url).path):
            continue
        seen.add(pattern)
        response = await browser.get(url)
        if response.status_code != 200 or "text/html" not in response.headers["content-type"]:
            continue
        crawl.pages[pattern] = url
        parser = _Forms(urlsplit(url).path)
        parser.feed(response.text)
        for form in parser.forms:
            action = urlsplit(form.action).path or urlsplit(url).path
            form.action = action
            if form.method == "GET":
                crawl.names |= set(form.fields)
            key = (form.method, _pattern(action), frozenset(form.fields))
            crawl.forms.setdefault(key, form)
        queue += [link for link in parser.links if link.startswith(within)]
    return crawl


async def fuzz_forms(
    browser: Browser, forms: Iterable[Form], skipped: re.Pattern[str], avoid: str
) -> int:
    """Post every form but those `skipped` or whose action holds `avoid` (the signed-in
    person's own id) with each field made bad in turn (`_sample`); how many were sent."""
    sent = 0
    for form in forms:
        if form.method != "POST" or skipped.search(form.action) or avoid in form.action:
            continue
        defaults = {k: v for k, v in form.fields.items() if k != "_csrf_token"}
        for name in defaults:
            for value in _sample(sent):
                data = {**defaults, name: value, "_csrf_token": browser.csrf}
                await browser.client.post(form.action, data=data)
                sent += 1
        # The fields no page offers, typed in by hand.
        await browser.client.post(form.action, data={"_csrf_token": browser.csrf, NUL: NUL})
    return sent


@pytest.fixture(scope="module")
async def owner(app: Litestar, victim: Victim) -> AsyncIterator[Browser]:
    async with browser_on(app) as browser:
        await browser.login(victim.tenant.owner)
        yield browser


@pytest.fixture(scope="module")
async def crawl(owner: Browser, victim: Victim) -> Crawl:
    starts = [start.format(slug=victim.tenant.slug) for start in START]
    found = await crawl_pages(owner, starts, ("/o/", "/me", "/account"), SKIPPED_FORMS)
    assert len(found.pages) >= 25, sorted(found.pages)  # the crawl reached the console
    assert len(found.forms) > 30, sorted(found.forms)
    return found


async def _owner_membership(victim: Victim) -> str:
    tenant = victim.tenant
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            tenant.owner.id,
        )
    return str(rows[0]["id"])


async def test_every_form_field_survives_bad_values(
    owner: Browser, crawl: Crawl, victim: Victim
) -> None:
    own_membership = await _owner_membership(victim)
    await owner.get(f"/o/{victim.tenant.slug}")
    # The owner demoting or removing themselves would end the crawl's powers.
    sent = await fuzz_forms(owner, crawl.forms.values(), SKIPPED_FORMS, own_membership)
    assert sent > 300


def _query_routes(app: Litestar) -> Iterator[tuple[str, list[str]]]:
    """Every GET path of the route table, with the query parameters its handler declares."""
    for route in app.routes:
        assert isinstance(route, HTTPRoute)
        for handler in route.route_handlers:
            if "GET" not in handler.http_methods:
                continue
            declared = [
                getattr(param.kwarg_definition, "query", None) or param.name
                for param in handler.parsed_fn_signature.parameters.values()
                if f"{{{param.name}:" not in route.path
            ]
            yield route.path, declared


def _made_up(path: str, slug: str) -> str:
    values = {"slug": slug, "uuid": "00000000-0000-4000-8000-000000000000", "int": "1"}
    return _PARAM.sub(lambda m: values.get(m.group(1), values.get(m.group(2), "made-up")), path)


async def test_every_query_string_survives_bad_values(
    app: Litestar, owner: Browser, crawl: Crawl, victim: Victim
) -> None:
    api = bearer(await issue_token(victim.tenant.owner_ctx))
    scim = bearer(victim.ids["scim_bearer"])
    sent = 0
    for path, declared in _query_routes(app):
        url = crawl.pages.get(_pattern(_made_up(path, victim.tenant.slug)))
        url = urlsplit(url).path if url else _made_up(path, victim.tenant.slug)
        headers = api if path.startswith("/api/") else scim if path.startswith("/scim/") else {}
        names = {*declared, *QUERY_NAMES, *crawl.names} - {"_csrf_token"}
        for value in _sample(sent):
            value = value[:QUERY_MAX]  # a longer URL is the server's 414, before Jalon
            await owner.client.get(url, params=dict.fromkeys(names, value), headers=headers)
            sent += 1
        # Bytes that are not UTF-8 once decoded, and a parameter given twice.
        await owner.client.get(f"{url}?cursor=%ff%fe&limit=%c0&limit=2&search=%ed%a0%80")
        sent += 1
    assert sent > 300


def _fill_with(path: str, slug: str, value: str) -> str:
    """`path` with the slug put in, and `value` in every other parameter."""
    return _PARAM.sub(lambda match: slug if match.group(1) == "slug" else value, path)


async def test_every_path_parameter_survives_bad_values(
    app: Litestar, owner: Browser, victim: Victim
) -> None:
    api = bearer(await issue_token(victim.tenant.owner_ctx))
    scim = bearer(victim.ids["scim_bearer"])
    bad = ["%00", "9" * 40, "%ff"]
    for route in app.routes:
        assert isinstance(route, HTTPRoute)
        if not _PARAM.search(route.path) or route.path.startswith("/static"):
            continue
        methods: set[str] = set().union(*(h.http_methods for h in route.route_handlers))
        methods -= {"HEAD"}
        for value in bad:
            url = _fill_with(route.path, victim.tenant.slug, value)
            headers = api if url.startswith("/api/") else scim if url.startswith("/scim/") else {}
            for method in sorted(methods - {"OPTIONS"}):
                data = None if method == "GET" else {"_csrf_token": owner.csrf}
                await owner.client.request(method, url, data=data, headers=headers)


#: A valid body of every JSON write, its path's `{…}` filled from the victim's ids.
JSON_BODIES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("PATCH", "/api/v1/members/{membership_id:str}"): ("membership", {"role": "admin"}),
    ("POST", "/api/v1/invitations"): ("", {"email": "fuzz@example.org", "role": "member"}),
    ("POST", "/scim/v2/Users"): (
        "",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "fuzzed@example.org",
            "displayName": "Fuzz",
            "active": True,
            "externalId": "fuzz",
            "name": {"givenName": "F", "familyName": "Z"},
            "emails": [{"value": "fuzzed@example.org", "primary": True}],
        },
    ),
    ("PUT", "/scim/v2/Users/{user_id:str}"): (
        "scim_user",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "provisioned-again@example.org",
            "displayName": "P",
            "active": True,
        },
    ),
    ("PATCH", "/scim/v2/Users/{user_id:str}"): (
        "scim_user",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "P"}],
        },
    ),
    ("POST", "/scim/v2/Groups"): (
        "",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Fuzz"},
    ),
    ("PUT", "/scim/v2/Groups/{group_id:str}"): (
        "scim_group",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "B staff"},
    ),
    ("PATCH", "/scim/v2/Groups/{group_id:str}"): (
        "scim_group",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "x"}]}],
        },
    ),
    ("POST", "/scim/v2/.search"): ("", {"filter": 'userName eq "x"', "count": 10}),
    ("POST", "/scim/v2/Users/.search"): ("", {"filter": 'userName eq "x"', "startIndex": 1}),
    ("POST", "/scim/v2/Groups/.search"): ("", {"filter": 'displayName eq "x"', "count": 1}),
}


def _json_writes(app: Litestar) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, HTTPRoute)
        if not route.path.startswith(("/api/v1", "/scim/v2")):
            continue
        for handler in route.route_handlers:
            if "data" in handler.parsed_fn_signature.parameters or (
                route.path.startswith("/scim/") and handler.http_methods & {"POST", "PUT", "PATCH"}
            ):
                found |= {(m, route.path) for m in handler.http_methods - {"HEAD", "OPTIONS"}}
    return found


def _mutations(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`body` with each field, and each field of its first nested object, made bad."""
    for key, original in body.items():
        for value in JSON_VALUES.values():
            yield {**body, key: value}
        if isinstance(original, list) and original and isinstance(original[0], dict):
            for inner in original[0]:
                for value in JSON_VALUES.values():
                    yield {**body, key: [{**original[0], inner: value}]}
        if isinstance(original, dict):
            for inner in original:
                for value in JSON_VALUES.values():
                    yield {**body, key: {**original, inner: value}}


async def test_every_json_field_survives_bad_values(
    app: Litestar, owner: Browser, victim: Victim
) -> None:
    assert _json_writes(app) == set(JSON_BODIES), "a JSON write needs its valid body here"
    api = bearer(await issue_token(victim.tenant.owner_ctx))
    scim = bearer(victim.ids["scim_bearer"])
    for (method, path), (ident, body) in JSON_BODIES.items():
        url = _PARAM.sub(victim.ids.get(ident, ""), path)
        headers = api if url.startswith("/api/") else scim
        media_type = "application/json" if url.startswith("/api/") else "application/scim+json"
        for mutated in _mutations(body):
            await owner.client.request(method, url, json=mutated, headers=headers)
        for raw in (b"[" * 5_000, b'{"a": "\\u0000"}', b"\xff\xfe", b"1e999999", b""):
            await owner.client.request(
                method,
                url,
                content=raw,
                headers={**headers, "content-type": media_type},
            )
