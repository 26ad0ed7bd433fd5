"""The JSON API's campaigns, participations, shared results and learners, with real tokens:
each endpoint, its scope, its pages and filters, errors, and another tenant's ids."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.service import create_campaign
from core import database
from tests.api.conftest import bearer, issue_token
from tests.campaigns.listing_helpers import seed
from tests.conftest import TenantFixture, make_tenant
from tests.db import as_tenant

#: A cursor of the right shape whose time is not one.
NOT_A_TIME = base64.urlsafe_b64encode(f"n|yesterday|{uuid4()}".encode()).decode().rstrip("=")
READ_ALL = ("org:campaigns:read", "org:learners:read", "org:results:read")


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    message: str = body["error"]["message"]
    return message


async def _campaign(tenant: TenantFixture, name: str = "API check") -> Campaign:
    return await create_campaign(tenant.owner_ctx, CampaignFields(name=name, profile_key="digcomp"))


async def _learner_of(tenant: TenantFixture, participation_id: UUID) -> str:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT learner_id FROM participation WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            participation_id,
        )
    return str(rows[0]["learner_id"])


async def _all_pages(
    client: httpx.AsyncClient, path: str, token: str, **params: str
) -> list[dict[str, Any]]:
    """Every page of a listing, following `next_cursor`; checks each page's shape."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor", "previous_cursor"}
        assert (page["previous_cursor"] is None) == (not pages)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50


@pytest.fixture(scope="module")
async def world(db: str) -> dict[str, Any]:
    """Tenant A with two campaigns (one with 14 participants in two groups), tenant B with
    its own campaign and participants, and tokens."""
    a, b = await make_tenant("ApiA"), await make_tenant("ApiB")
    busy, quiet = await _campaign(a, "Busy"), await _campaign(a, "Quiet")
    participations = await seed(a, busy.id, 14, groups=("Paris", "Lyon"))
    theirs = await _campaign(b, "Theirs")
    b_participations = await seed(b, theirs.id, 3, prefix="Other")
    return {
        "a": a,
        "b": b,
        "busy": busy,
        "quiet": quiet,
        "participations": participations,
        "theirs": theirs,
        "b_participation": b_participations[2],
        "b_learner": await _learner_of(b, b_participations[2]),
        "a_learner": await _learner_of(a, participations[2]),
        "token": await issue_token(a.owner_ctx, *READ_ALL),
        "b_token": await issue_token(b.owner_ctx, *READ_ALL),
    }


# --- campaigns ---------------------------------------------------------------------------


async def test_campaigns_are_listed_newest_first_with_their_funnel(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    pages = await _all_pages(client, "/api/v1/campaigns", world["token"], limit="1")
    items = [item for page in pages for item in page["items"]]
    assert [item["name"] for item in items] == ["Quiet", "Busy"]
    busy = items[1]
    assert (busy["started"], busy["completed"], busy["shared"]) == (14, 9, 4)
    assert busy["code"] == world["busy"].code
    assert busy["status"] == "active"
    assert busy["competences"] == list(world["busy"].profile.competences)
    one = await client.get(f"/api/v1/campaigns/{busy['id']}", headers=bearer(world["token"]))
    assert one.status_code == 200
    assert one.json() == busy
    active = await client.get(
        "/api/v1/campaigns", params={"status": "draft"}, headers=bearer(world["token"])
    )
    assert active.json()["items"] == []


# --- participations ----------------------------------------------------------------------


async def test_participations_page_through_and_hide_unshared_levels(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    path = f"/api/v1/campaigns/{world['busy'].id}/participations"
    pages = await _all_pages(client, path, world["token"], limit="4")
    assert [len(page["items"]) for page in pages] == [4, 4, 4, 2]
    items = [item for page in pages for item in page["items"]]
    assert [item["id"] for item in items] == [str(p) for p in reversed(world["participations"])]
    for item in items:
        if item["status"] == "shared":
            assert item["level"] is not None
            assert item["shared_at"] is not None
        else:
            assert item["level"] is None
            assert item["score"] is None
    assert set(items[0]) == {
        "id",
        "campaign_id",
        "learner_id",
        "name",
        "email",
        "external_id",
        "groups",
        "attempt",
        "status",
        "started_at",
        "completed_at",
        "shared_at",
        "level",
        "score",
    }
    # Back from the last page to the one before.
    back = await client.get(
        path,
        params={"limit": "4", "cursor": pages[-1]["previous_cursor"]},
        headers=bearer(world["token"]),
    )
    assert back.json()["items"] == pages[-2]["items"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "shared", "group": "Paris"}, ["Learner 008", "Learner 002"]),
        # learner1@, learner10@ … learner13@ (names have a space: "Learner 001")
        (
            {"search": "learner1"},
            ["Learner 013", "Learner 012", "Learner 011", "Learner 010", "Learner 001"],
        ),
        ({"search": "EXT-007"}, ["Learner 007"]),
        (
            {"status": "started", "search": "00"},
            ["Learner 009", "Learner 006", "Learner 003", "Learner 000"],
        ),
        ({"group": "Nowhere"}, []),
    ],
)
async def test_participations_are_filtered(
    client: httpx.AsyncClient, world: dict[str, Any], params: dict[str, str], names: list[str]
) -> None:
    response = await client.get(
        f"/api/v1/campaigns/{world['busy'].id}/participations",
        params=params,
        headers=bearer(world["token"]),
    )
    assert response.status_code == 200
    found = [item["name"] for item in response.json()["items"]]
    assert found == names


# --- shared results ----------------------------------------------------------------------


async def test_results_are_only_the_shared_ones_with_levels_per_competence(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    path = f"/api/v1/campaigns/{world['busy'].id}/results"
    pages = await _all_pages(client, path, world["token"], limit="3")
    items = [item for page in pages for item in page["items"]]
    shared = [p for i, p in enumerate(world["participations"]) if i % 3 == 2]
    assert [item["participation_id"] for item in items] == [str(p) for p in reversed(shared)]
    first = items[0]  # Learner 011
    assert first["name"] == "Learner 011"
    assert first["level"] == 11 % 9
    assert first["competences"] == [
        {"code": "1.1", "level": 11 % 9},
        {"code": "1.2", "level": 12 % 9},
    ]
    quiet = await client.get(
        f"/api/v1/campaigns/{world['quiet'].id}/results", headers=bearer(world["token"])
    )
    assert quiet.json() == {"items": [], "next_cursor": None, "previous_cursor": None}


# --- learners ----------------------------------------------------------------------------


async def test_learners_are_listed_searched_and_read_one_by_one(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    pages = await _all_pages(client, "/api/v1/learners", world["token"], limit="5")
    items = [item for page in pages for item in page["items"]]
    assert [item["name"] for item in items] == [f"Learner {i:03d}" for i in reversed(range(14))]
    lyon = await client.get(
        "/api/v1/learners", params={"group": "Lyon"}, headers=bearer(world["token"])
    )
    assert len(lyon.json()["items"]) == 7
    one = await client.get(f"/api/v1/learners/{world['a_learner']}", headers=bearer(world["token"]))
    assert one.status_code == 200
    body = one.json()
    assert body["name"] == "Learner 002"
    assert body["groups"] == ["Paris"]
    [taken] = body["participations"]
    assert (taken["campaign_name"], taken["status"], taken["level"]) == ("Busy", "shared", 2)


# --- scopes, errors and other tenants ----------------------------------------------------

ENDPOINTS = [
    ("/api/v1/campaigns", "org:campaigns:read"),
    ("/api/v1/campaigns/{campaign}", "org:campaigns:read"),
    ("/api/v1/campaigns/{campaign}/participations", "org:learners:read"),
    ("/api/v1/campaigns/{campaign}/results", "org:results:read"),
    ("/api/v1/learners", "org:learners:read"),
    ("/api/v1/learners/{learner}", "org:learners:read"),
]


@pytest.mark.parametrize(("path", "scope"), ENDPOINTS)
async def test_each_endpoint_needs_its_scope_and_only_it(
    client: httpx.AsyncClient, world: dict[str, Any], path: str, scope: str
) -> None:
    url = path.format(campaign=world["busy"].id, learner=world["a_learner"])
    others = [s for s in READ_ALL if s != scope] + ["org:members:read"]
    refused = await client.get(
        url, headers=bearer(await issue_token(world["a"].owner_ctx, *others))
    )
    assert _error(refused, 403) == "This token does not have the required scope."
    allowed = await client.get(url, headers=bearer(await issue_token(world["a"].owner_ctx, scope)))
    assert allowed.status_code == 200


@pytest.mark.parametrize(("path", "_scope"), ENDPOINTS[1:4] + ENDPOINTS[5:])
async def test_another_tenants_ids_are_404_like_unknown_ones(
    client: httpx.AsyncClient, world: dict[str, Any], path: str, _scope: str
) -> None:
    theirs = path.format(campaign=world["theirs"].id, learner=world["b_learner"])
    unknown = path.format(campaign=uuid4(), learner=uuid4())
    foreign = await client.get(theirs, headers=bearer(world["token"]))
    missing = await client.get(unknown, headers=bearer(world["token"]))
    assert _error(foreign, 404) == _error(missing, 404) == "Not found."
    assert foreign.content == missing.content
    # B's own token reads them.
    assert (await client.get(theirs, headers=bearer(world["b_token"]))).status_code == 200


async def test_listings_hold_nothing_of_another_tenant(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    for path in ("/api/v1/campaigns", "/api/v1/learners"):
        text = (
            await client.get(path, params={"limit": "100"}, headers=bearer(world["token"]))
        ).text
        assert "Theirs" not in text
        assert "Other " not in text
        assert str(world["b_learner"]) not in text


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"cursor": "forged"}, 422, "This page link is not valid."),
        ({"cursor": NOT_A_TIME}, 422, "This page link is not valid."),
        ({"limit": "0"}, 422, "Ask for between 1 and 100 items per page."),
        ({"limit": "101"}, 422, "Ask for between 1 and 100 items per page."),
        ({"limit": "lots"}, 400, "The request is not valid"),
        ({"status": "finished"}, 422, "Choose one of the offered statuses."),
        ({"search": "x" * 201}, 422, "This field is too long (200 characters at most)."),
    ],
)
async def test_bad_paging_and_filters_are_explained(
    client: httpx.AsyncClient,
    world: dict[str, Any],
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = await client.get(
        f"/api/v1/campaigns/{world['busy'].id}/participations",
        params=params,
        headers=bearer(world["token"]),
    )
    assert message in _error(response, status)
    if status == 422:
        assert response.json()["error"]["field"] in ("cursor", "limit", "status", "search")


async def test_errors_are_in_the_callers_language(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    response = await client.get(
        "/api/v1/learners",
        params={"limit": "500"},
        headers={**bearer(world["token"]), "accept-language": "fr"},
    )
    assert _error(response, 422) != "Ask for between 1 and 100 items per page."


async def test_the_openapi_document_describes_the_campaign_endpoints(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/api/v1/campaigns",
        "/api/v1/campaigns/{campaign_id}",
        "/api/v1/campaigns/{campaign_id}/participations",
        "/api/v1/campaigns/{campaign_id}/results",
        "/api/v1/learners",
        "/api/v1/learners/{learner_id}",
    ):
        assert "get" in schema["paths"][path], path
    participations = schema["paths"]["/api/v1/campaigns/{campaign_id}/participations"]["get"]
    assert {p["name"] for p in participations["parameters"]} >= {
        "campaign_id",
        "cursor",
        "limit",
        "status",
        "search",
        "group",
    }
    assert "null until the learner shares" in participations["description"]
    components = schema["components"]["schemas"]
    names = " ".join(components)
    for model in ("Participation", "SharedResult", "CompetenceLevel", "Learner", "Campaign"):
        assert model in names, model
