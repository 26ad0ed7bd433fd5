"""Locust scenarios against a Jalon seeded with the demo data (`jalon demo`).

Three kinds of traffic, weighted like a working day: visitors on public pages, tenant members
reading the console, and integrations reading the JSON API with a token
(`JALON_LOAD_TOKEN`, created by `loadtests/run.py`).
"""

from __future__ import annotations

import os
import re

from locust import HttpUser, between, task

DEMO_PASSWORD = "jalon-demo-2026"
DEMO_SLUG = "atelier-numerique"
DEMO_ACCOUNTS = (
    "claire.martin@atelier.example",
    "karim.benali@atelier.example",
    "sophie.leroy@atelier.example",
)
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


class Visitor(HttpUser):
    weight = 2
    wait_time = between(0.5, 2)

    @task(3)
    def home(self) -> None:
        self.client.get("/")

    @task(2)
    def login_page(self) -> None:
        self.client.get("/login")

    @task(1)
    def health(self) -> None:
        self.client.get("/readyz")


class ConsoleMember(HttpUser):
    weight = 3
    wait_time = between(1, 3)

    def on_start(self) -> None:
        page = self.client.get("/login", name="/login")
        match = _CSRF.search(page.text)
        email = DEMO_ACCOUNTS[id(self) % len(DEMO_ACCOUNTS)]
        self.client.post(
            "/login",
            data={
                "_csrf_token": match.group(1) if match else "",
                "email": email,
                "password": DEMO_PASSWORD,
            },
            name="POST /login",
            allow_redirects=False,
        )

    @task(3)
    def dashboard(self) -> None:
        self.client.get(f"/o/{DEMO_SLUG}/", name="/o/{slug}/")

    @task(2)
    def members(self) -> None:
        self.client.get(f"/o/{DEMO_SLUG}/members", name="/o/{slug}/members")

    @task(1)
    def orgs(self) -> None:
        self.client.get("/o/", name="/o/")


class Integration(HttpUser):
    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.client.headers["authorization"] = f"Bearer {os.environ.get('JALON_LOAD_TOKEN', '')}"

    @task(2)
    def organization(self) -> None:
        self.client.get("/api/v1/organization")

    @task(1)
    def members(self) -> None:
        self.client.get("/api/v1/members")
