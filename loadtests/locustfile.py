"""Locust scenarios against a Jalon seeded with the demo data (`jalon demo`).

Four kinds of traffic, weighted like a working day: visitors on public pages, tenant members
reading the console, integrations reading the JSON API with a token (`JALON_LOAD_TOKEN`,
created by `loadtests/run.py`), and participants taking a demo campaign's adaptive test
(`JALON_LOAD_CAMPAIGN`, its code): each creates an account, starts, and answers one question
per task, with a few seconds of thought between answers.
"""

from __future__ import annotations

import os
import random
import re
import uuid

from locust import HttpUser, between, task

DEMO_PASSWORD = "jalon-demo-2026"
DEMO_SLUG = "atelier-numerique"
DEMO_ACCOUNTS = (
    "claire.martin@atelier.example",
    "karim.benali@atelier.example",
    "sophie.leroy@atelier.example",
)
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'name="(challenge_id|type)" value="([^"]*)"')
_CHOICES = re.compile(r'name="answer" value="(\d+)"')


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


class Participant(HttpUser):
    weight = 3
    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.code = os.environ.get("JALON_LOAD_CAMPAIGN", "")
        self.page = ""
        page = self.client.get(f"/c/{self.code}/account", name="/c/{code}/account")
        token = _CSRF.search(page.text)
        self.client.post(
            f"/c/{self.code}/account",
            data={
                "_csrf_token": token.group(1) if token else "",
                "name": "Load Participant",
                "email": f"load-{uuid.uuid4().hex[:12]}@example.org",
                "password": DEMO_PASSWORD,
                "password_confirm": DEMO_PASSWORD,
                "terms": "yes",
            },
            name="POST /c/{code}/account",
        )
        self._start()

    def _start(self) -> None:
        landing = self.client.get(f"/c/{self.code}", name="/c/{code}")
        token = _CSRF.search(landing.text)
        # the demo campaign asks for an identifier (a "Matricule", free text)
        started = self.client.post(
            f"/c/{self.code}/start",
            data={"_csrf_token": token.group(1) if token else "", "external_id": "LOAD-1"},
            name="POST /c/{code}/start",
            allow_redirects=False,
        )
        self.page = started.headers.get("location", "")

    @task
    def answer(self) -> None:
        if not self.page or self.page.endswith("/results"):
            return
        page = self.client.get(self.page, name="/p/{slug}/{id}")
        hidden = dict(_HIDDEN.findall(page.text))
        if "challenge_id" not in hidden:
            self.page = ""
            return
        token = _CSRF.search(page.text)
        choices = _CHOICES.findall(page.text)
        if hidden.get("type") == "short_text" or not choices:
            form = {"answer": "je ne sais pas"}
        else:
            form = {"answer": random.choice(choices)}
        sent = self.client.post(
            self.page,
            data={"_csrf_token": token.group(1) if token else "", **hidden, **form},
            name="POST /p/{slug}/{id} (answer)",
            allow_redirects=False,
        )
        if sent.headers.get("location", "").endswith("/results"):
            self.client.get(sent.headers["location"], name="/p/{slug}/{id}/results")
            self.page = ""
