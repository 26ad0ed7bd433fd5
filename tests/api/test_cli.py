"""The `jalon` command line, run as an operator would: each create prints one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any
from uuid import UUID, uuid4

import httpx

from api.runtime import YOUNG_COLLECTION_THRESHOLD
from core import database
from tests.db import as_tenant

JALON = [sys.executable, "-m", "api.cli"]


def _jalon(owner_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # jobs in-process
    env["DATABASE_URL"] = owner_url
    return subprocess.run(
        [*JALON, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _created(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one JSON line, for scripts
    payload: dict[str, Any] = json.loads(lines[0])
    return payload


async def test_operators_chain_staff_tenant_and_token_creation(
    owner_url: str, client: httpx.AsyncClient
) -> None:
    suffix = uuid4().hex[:8]
    email = f"ops-{suffix}@example.org"
    staff = _created(
        _jalon(
            owner_url,
            "staff",
            "create",
            "--email",
            email,
            "--name",
            "Ops",
            "--role",
            "account_manager",
            "--force",  # a superadmin may exist already: break-glass
            "--password",
            "a long enough password",
        )
    )
    assert staff["email"] == email
    assert staff["role"] == "account_manager"

    slug = f"cli-{suffix}"
    tenant = _created(
        _jalon(
            owner_url,
            "tenant",
            "create",
            "--name",
            "Ville de Test",
            "--slug",
            slug,
            "--kind",
            "local_authority",
            "--country",
            "FR",
            "--owner-email",
            email,
        )
    )
    assert tenant["slug"] == slug
    assert tenant["status"] == "trial"

    issued = _created(
        _jalon(
            owner_url,
            "token",
            "create",
            "--tenant",
            slug,
            "--name",
            "sync",
            "--scope",
            "org:organization:read",
            "--expires-in-days",
            "30",
        )
    )
    secret = issued["token"]
    assert secret.startswith("jalon_")
    async with as_tenant(UUID(tenant["id"])):
        [stored] = await database.fetch("SELECT prefix, token_hash FROM api_token")
    assert secret.startswith(stored["prefix"])
    assert secret.encode() not in bytes(stored["token_hash"])  # only a digest is kept

    response = await client.get(
        "/api/v1/organization", headers={"authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    assert response.json()["slug"] == slug


def test_a_duplicate_slug_fails_with_a_message_and_no_traceback(owner_url: str) -> None:
    slug = f"dup-{uuid4().hex[:8]}"
    create = (
        "tenant",
        "create",
        "--name",
        "Dup",
        "--slug",
        slug,
        "--kind",
        "company",
        "--country",
        "FR",
    )
    _created(_jalon(owner_url, *create))
    again = _jalon(owner_url, *create)
    assert again.returncode == 2
    assert again.stdout == ""
    assert "already" in again.stderr
    assert "Traceback" not in again.stderr


def test_bad_options_are_refused_before_anything_is_written(owner_url: str) -> None:
    result = _jalon(
        owner_url,
        "tenant",
        "create",
        "--name",
        "X",
        "--slug",
        "Not A Slug",
        "--kind",
        "company",
        "--country",
        "FR",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    unknown_scope = _jalon(
        owner_url, "token", "create", "--tenant", "nope", "--name", "n", "--scope", "everything"
    )
    assert unknown_scope.returncode == 2
    assert "Traceback" not in unknown_scope.stderr


async def test_content_editors_triage_reports_from_the_command_line(
    owner_url: str, db: str
) -> None:
    """`jalon reports`: a content editor lists and reviews; anyone else is refused."""
    suffix = uuid4().hex[:8]
    editor = f"editor-{suffix}@example.org"
    _created(
        _jalon(
            owner_url,
            "staff",
            "create",
            "--email",
            editor,
            "--name",
            "Ed",
            "--role",
            "content_editor",
            "--force",  # a superadmin may exist already: break-glass
        )
    )
    async with database.global_transaction():
        await database.execute(
            """INSERT INTO challenge_flag (challenge_id, status, withdrawn_at, recent_reports)
               VALUES ($1, 'withdrawn', now(), 3)""",
            f"cli-{suffix}",
        )
    listed = _jalon(owner_url, "reports", "list", "--as", editor, "--status", "withdrawn")
    assert listed.returncode == 0, listed.stderr
    flags = [json.loads(line) for line in listed.stdout.splitlines()]
    assert f"cli-{suffix}" in [flag["challenge_id"] for flag in flags]
    reviewed = _created(_jalon(owner_url, "reports", "review", f"cli-{suffix}", "--as", editor))
    assert reviewed == {"challenge_id": f"cli-{suffix}", "status": "reviewed"}
    refused = _jalon(owner_url, "reports", "list", "--as", f"nobody-{suffix}@example.org")
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr


def test_a_web_worker_freezes_what_start_up_built_out_of_the_collectors_reach(
    owner_url: str, tmp_path: Any
) -> None:
    """`jalon serve` builds each worker's application through `served_app`: what it built is
    then frozen, and young collections are rarer (ADR 0023, addendum 4), so that no full
    collection walks the application while every request of the worker waits."""
    probe = (
        "import gc; from api.cli import served_app; served_app(); "
        "print(gc.get_freeze_count(), gc.get_threshold()[0])"
    )
    env = dict(os.environ, DATABASE_URL=owner_url, JALON_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    frozen, threshold = map(int, result.stdout.split())
    assert frozen > 100_000  # the application, its templates and the bank
    assert threshold == YOUNG_COLLECTION_THRESHOLD
