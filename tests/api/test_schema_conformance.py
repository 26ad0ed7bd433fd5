"""Schemathesis against the documented API (`/schema/openapi.json`) of the real application,
served by uvicorn on 127.0.0.1, authenticated as each of two organizations in turn: the
examples, coverage and fuzzing phases (not the stateful one, to bound the time), every
check, a fixed seed and a bounded number of examples. No server error, no answer the schema
does not describe (status codes, bodies, content types, the `Allow` header of a 405...). Then
the explicit cases behind the fixes: `Allow`, the error body of a 400, the documented bounds
and 409s, and ids of the other organization."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from litestar import Litestar
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from tests.api.conftest import Browser, bearer, issue_token
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture

SEED = 20261203
MAX_EXAMPLES = 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def live_api(app: Litestar) -> AsyncIterator[str]:
    """The suite's application served by uvicorn on 127.0.0.1 for this test only."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event to wait on  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def _run(base_url: str, token: str) -> tuple[list[str], Counter[int]]:
    """Schemathesis's engine over the whole API as `token`: the failures, described, and how
    many answers of each status it got."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {token}"},
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                # A value the schema admits may still be refused by the service with the
                # documented 422 naming the field: an opaque cursor that was forged, a search
                # with control characters, an address that is not one. A 400 (the schema's
                # own bounds and types) stays a failure.
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", "3XX", 401, 403, 404, 409, 422, 429]
                },
            },
            "request-timeout": 30,
        }
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", config=config)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    statuses[interaction.response.status_code] += 1
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        case = event.recorder.cases[case_id].value
                        failure = check.failure_info.failure
                        failures.append(
                            f"{case.method} {case.formatted_path} [{check.name}] "
                            f"{failure.title}: {failure.message}\n"
                            f"{check.failure_info.code_sample[:600]}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"error: {event.info.format() if hasattr(event, 'info') else event}")
    return failures, statuses


async def test_the_api_conforms_to_its_schema_for_two_organizations(
    live_api: str, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    # Each organization owns a campaign, so ids of the other one exist and answer 404.
    for tenant in (tenant_a, tenant_b):
        await make_campaign(tenant)
    found: dict[str, list[str]] = {}
    for tenant in (tenant_a, tenant_b):
        token = await issue_token(tenant.owner_ctx)
        failures, statuses = await asyncio.to_thread(_run, live_api, token)
        if failures:
            found[tenant.slug] = sorted(set(failures))
        print(tenant.slug, sum(statuses.values()), "requests,", dict(sorted(statuses.items())))
        # The token works (the run is not 401s throughout), and every kind of answer is seen.
        assert sum(n for status, n in statuses.items() if status < 300) > 50, statuses
        assert {200, 201, 204, 400, 404, 405, 409, 422} <= set(statuses), statuses
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


async def test_a_405_names_the_allowed_methods(browser: Browser, tenant_a: TenantFixture) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    refused = await browser.client.put("/api/v1/invitations", headers=bearer(token))
    assert refused.status_code == 405
    assert set(refused.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert refused.json()["error"]["status"] == 405
    scim = await browser.client.request("TRACE", "/scim/v2/Users")
    assert scim.status_code == 405
    assert "GET" in scim.headers["allow"]
    page = await browser.client.request("PUT", "/login")
    assert page.status_code == 405
    assert "GET" in page.headers["allow"]


async def test_options_lists_every_method_of_an_api_path(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    for path, methods in (
        ("/api/v1/invitations", {"GET", "POST"}),
        ("/api/v1/members/x", {"GET", "PATCH", "DELETE"}),
    ):
        response = await browser.client.options(path, headers=bearer(token))
        assert response.status_code == 204
        assert set(response.headers["allow"].replace(" ", "").split(",")) >= methods


async def test_a_parameter_of_the_wrong_type_is_a_400_in_the_error_schema(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    for path in ("/api/v1/campaigns?limit=many", "/api/v1/members?limit=1.5"):
        response = await browser.client.get(path, headers=bearer(token))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == 400
        assert error["field"] == "limit"
        assert "limit" in error["message"]
    bad_role = await browser.client.post(
        "/api/v1/invitations",
        json={"email": "someone@example.com", "role": 3},
        headers=bearer(token),
    )
    assert bad_role.status_code == 400
    assert set(bad_role.json()) == {"error"}
    assert set(bad_role.json()["error"]) <= {"status", "message", "field"}


async def test_the_schema_documents_the_bounds_and_choices_the_services_check(
    browser: Browser,
) -> None:
    from campaigns.campaign_fields import STATUSES
    from campaigns.campaign_listing import PARTICIPATION_STATUSES

    schema = (await browser.client.get("/schema/openapi.json")).json()

    def parameter(path: str, name: str) -> dict[str, Any]:
        found = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
        return dict(found[0]["schema"])

    assert parameter("/api/v1/campaigns", "limit")["minimum"] == 1
    assert parameter("/api/v1/campaigns", "limit")["maximum"] == 100
    assert parameter("/api/v1/members", "limit")["maximum"] == 200
    assert parameter("/api/v1/campaigns", "status")["enum"] == list(STATUSES)
    participations = "/api/v1/campaigns/{campaign_id}/participations"
    assert parameter(participations, "status")["enum"] == list(PARTICIPATION_STATUSES)
    assert parameter("/api/v1/learners", "search")["maxLength"] == 200
    roles = schema["components"]["schemas"]["NewInvitation"]["properties"]["role"]["enum"]
    assert set(roles) == {"owner", "admin", "member"}
    for path, method in (
        ("/api/v1/invitations", "post"),
        ("/api/v1/invitations/{invitation_id}", "delete"),
        ("/api/v1/invitations/{invitation_id}/resend", "post"),
        ("/api/v1/members/{membership_id}", "patch"),
        ("/api/v1/members/{membership_id}", "delete"),
    ):
        assert {"400", "409", "422"} <= set(schema["paths"][path][method]["responses"]), path
    error = schema["paths"]["/api/v1/campaigns"]["get"]["responses"]["400"]
    assert error["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")


async def test_ids_of_the_other_organization_answer_404_in_the_error_schema(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    tokens, ids = {}, {}
    for tenant in (tenant_a, tenant_b):
        token = tokens[tenant.slug] = await issue_token(tenant.owner_ctx)
        campaign = await make_campaign(tenant)
        members = (await browser.client.get("/api/v1/members", headers=bearer(token))).json()
        invited = await browser.client.post(
            "/api/v1/invitations", json={"email": f"x@{tenant.slug}.example"}, headers=bearer(token)
        )
        assert invited.status_code == 201
        ids[tenant.slug] = (campaign.id, members["items"][-1]["id"], invited.json()["id"])
    for mine, theirs in ((tenant_a, tenant_b), (tenant_b, tenant_a)):
        campaign_id, member_id, invitation_id = ids[theirs.slug]
        for method, path, body in (
            ("GET", f"/api/v1/campaigns/{campaign_id}", None),
            ("GET", f"/api/v1/campaigns/{campaign_id}/participations", None),
            ("GET", f"/api/v1/campaigns/{campaign_id}/results", None),
            ("GET", f"/api/v1/learners/{member_id}", None),
            ("GET", f"/api/v1/members/{member_id}", None),
            ("PATCH", f"/api/v1/members/{member_id}", {"role": "member"}),
            ("DELETE", f"/api/v1/members/{member_id}", None),
            ("GET", f"/api/v1/invitations/{invitation_id}", None),
            ("POST", f"/api/v1/invitations/{invitation_id}/resend", None),
            ("DELETE", f"/api/v1/invitations/{invitation_id}", None),
        ):
            response = await browser.client.request(
                method, path, json=body, headers=bearer(tokens[mine.slug])
            )
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["status"] == 404
