"""Input that once answered a 500 (issue 13 §2.4): each is now refused with a 4xx and a
message in the person's language, or, on the command line, with a clean error."""

from __future__ import annotations

import os
import subprocess
import sys
from uuid import uuid4

import httpx
import pytest

from tests.api.conftest import Browser, bearer, issue_token
from tests.conftest import TenantFixture


@pytest.mark.parametrize(
    "form",
    [
        {"email": "alice\x00@example.org"},
        {"email": "alice\x00@example.org", "password": "correct horse battery"},
        {"email": "\x00", "password": "\x00"},
    ],
)
async def test_a_nul_in_the_sign_in_email_is_refused_with_a_message(
    browser: Browser, form: dict[str, str]
) -> None:
    response = await browser.post("/login", form)
    assert response.status_code == 422
    assert "characters that are not allowed" in response.text


@pytest.mark.parametrize("path", ["/login", "/login/link", "/password/forgot"])
async def test_a_nul_in_a_query_string_email_is_refused_or_ignored(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, params={"email": "alice\x00@example.org", "next": "/\x00"})
    assert response.status_code in (200, 400, 422)


async def test_a_nul_in_a_multipart_sign_in_is_refused(browser: Browser) -> None:
    await browser.get("/login")
    response = await browser.client.post(
        "/login",
        files={"email": (None, "alice\x00@example.org"), "_csrf_token": (None, browser.csrf)},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("since", "until"),
    [("0001-01-01", ""), ("", "9999-12-31"), ("0001-01-01", "9999-12-31"), ("1999-12-31", "")],
)
async def test_audit_filters_at_the_ends_of_the_calendar_are_refused(
    browser: Browser, tenant_a: TenantFixture, since: str, until: str
) -> None:
    await browser.login(tenant_a.owner)
    response = await browser.get(
        f"/o/{tenant_a.slug}/audit", params={"since": since, "until": until}
    )
    assert response.status_code == 422
    assert "between the years 2000 and 2100" in response.text


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_json_nested_deeply_is_a_400_with_the_error_body(
    client: httpx.AsyncClient, tenant_a: TenantFixture, depth: int
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    body = '{"email": "x@example.org", "role": ' + _nested(depth) + "}"
    response = await client.post(
        "/api/v1/invitations",
        content=body,
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == 400
    assert "nested" in error["message"]


def test_an_unknown_time_zone_is_a_clean_command_line_error(owner_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = owner_url
    for zone in ("Europe", "US", "Europe/Nowhere", "../../etc/passwd"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "api.cli",
                "tenant",
                "create",
                "--name",
                "Zone",
                "--slug",
                f"zone-{uuid4().hex[:8]}",
                "--kind",
                "company",
                "--country",
                "FR",
                "--timezone",
                zone,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "time zone" in result.stderr


async def test_an_overlong_scim_field_is_a_scim_400_naming_the_limit(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    from sso.scim_tokens import create_scim_token

    token = (await create_scim_token(tenant_a.owner_ctx, "directory")).token
    response = await client.post(
        "/scim/v2/Users",
        json={"userName": "someone@example.org", "displayName": "x" * 100_000},
        headers=bearer(token),
    )
    assert response.status_code == 400, response.text
    assert "200 characters at most" in response.json()["detail"]


@pytest.mark.parametrize("depth", [100, 5_000])
async def test_a_deeply_nested_scim_body_is_a_scim_400(
    client: httpx.AsyncClient, tenant_a: TenantFixture, depth: int
) -> None:
    from sso.scim_tokens import create_scim_token

    token = (await create_scim_token(tenant_a.owner_ctx, "directory")).token
    for content_type in ("application/scim+json", "application/json"):
        response = await client.post(
            "/scim/v2/Users",
            content=b'{"userName": ' + _nested(depth).encode() + b"}",
            headers={**bearer(token), "content-type": content_type},
        )
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.json()["detail"]
