"""Locust scenarios against a Jalon seeded with the demo data (`jalon demo`): the peak.

Participants (`LOAD_PARTICIPANTS`, 300 by default) take whole tests from the campaign link
(`JALON_LOAD_CAMPAIGN`, its code), as a school class or a city service would in one hour:
the code form, the landing page, a new account, the start, then one answer after another
with a few seconds of thought until the results, and then the next participant on the same
simulated seat begins. Beside them, tenant members read the console (`LOAD_CONSOLE`) and
integrations read the JSON API with a token (`LOAD_API`, `JALON_LOAD_TOKEN`), and a few
visitors open public pages.

Every request whose answer is not the one a working Jalon gives (a form sent back with an
error, a redirect to the wrong place) counts as failed, not only 4xx and 5xx. Each answer
the server accepted (its 303) is counted per participation, and written at the end to
`LOAD_REPORT` (JSON) so that `loadtests/run.py` can count the rows stored against it.
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections import Counter
from typing import Any

from locust import HttpUser, between, events, task

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
_PARTICIPATION = re.compile(r"^/p/[^/]+/([0-9a-f-]{36})$")

#: Answers the server accepted (a 303 to the answer POST), by participation id.
ANSWERS: Counter[str] = Counter()
#: Participations that reached their results.
COMPLETED: set[str] = set()


def _count(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _write_report(environment: Any, **_kwargs: Any) -> None:
    path = os.environ.get("LOAD_REPORT")
    if not path:
        return
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"answers": dict(ANSWERS), "completed": sorted(COMPLETED)}, handle)


def _csrf(text: str) -> str:
    match = _CSRF.search(text)
    return match.group(1) if match else ""


class Visitor(HttpUser):
    fixed_count = _count("LOAD_VISITORS", 5)
    wait_time = between(1, 3)

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
    fixed_count = _count("LOAD_CONSOLE", 15)
    wait_time = between(1, 4)

    def on_start(self) -> None:
        page = self.client.get("/login", name="/login")
        email = DEMO_ACCOUNTS[random.randrange(len(DEMO_ACCOUNTS))]
        with self.client.post(
            "/login",
            data={"_csrf_token": _csrf(page.text), "email": email, "password": DEMO_PASSWORD},
            name="POST /login",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 303:
                response.failure(f"sign-in answered {response.status_code}")

    @task(3)
    def dashboard(self) -> None:
        self.client.get(f"/o/{DEMO_SLUG}/", name="/o/{slug}/")

    @task(2)
    def members(self) -> None:
        self.client.get(f"/o/{DEMO_SLUG}/members", name="/o/{slug}/members")

    @task(2)
    def campaigns(self) -> None:
        self.client.get(f"/o/{DEMO_SLUG}/campaigns", name="/o/{slug}/campaigns")

    @task(1)
    def orgs(self) -> None:
        self.client.get("/o/", name="/o/")


class Integration(HttpUser):
    fixed_count = _count("LOAD_API", 5)
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.client.headers["authorization"] = f"Bearer {os.environ.get('JALON_LOAD_TOKEN', '')}"

    @task(2)
    def organization(self) -> None:
        self.client.get("/api/v1/organization")

    @task(1)
    def members(self) -> None:
        self.client.get("/api/v1/members")


class Participant(HttpUser):
    """One seat in the exam room: participants take the whole test, one after another."""

    fixed_count = _count("LOAD_PARTICIPANTS", 300)
    wait_time = between(
        float(os.environ.get("LOAD_THINK_MIN", "2")), float(os.environ.get("LOAD_THINK_MAX", "6"))
    )

    def on_start(self) -> None:
        self.code = os.environ.get("JALON_LOAD_CAMPAIGN", "")
        self.page = ""

    @task
    def step(self) -> None:
        """Begin a test when none is running, else answer the current challenge."""
        if not self.page:
            self._begin()
        else:
            self._answer()

    def _begin(self) -> None:
        self.client.cookies.clear()  # a new person, a new browser
        # the code typed in the code form, which redirects to the campaign's landing page
        with self.client.get(
            "/c", params={"code": self.code}, name="/c?code=", catch_response=True
        ) as landing:
            if landing.status_code != 200 or not str(landing.url).endswith(f"/c/{self.code}"):
                landing.failure(f"the code led to {landing.url} ({landing.status_code})")
                return
        account = self.client.get(f"/c/{self.code}/account", name="/c/{code}/account")
        with self.client.post(
            f"/c/{self.code}/account",
            data={
                "_csrf_token": _csrf(account.text),
                "name": "Load Participant",
                "email": f"load-{uuid.uuid4().hex[:16]}@example.org",
                "password": DEMO_PASSWORD,
                "password_confirm": DEMO_PASSWORD,
                "terms": "yes",
            },
            name="POST /c/{code}/account",
            allow_redirects=False,
            catch_response=True,
        ) as created:
            if created.status_code != 303:
                created.failure(f"the account was not created ({created.status_code})")
                return
        landing_page = self.client.get(f"/c/{self.code}", name="/c/{code}")
        # the demo campaign asks for an identifier (a "Matricule", free text)
        with self.client.post(
            f"/c/{self.code}/start",
            data={"_csrf_token": _csrf(landing_page.text), "external_id": "LOAD-1"},
            name="POST /c/{code}/start",
            allow_redirects=False,
            catch_response=True,
        ) as started:
            location = started.headers.get("location", "")
            if started.status_code != 303 or not _PARTICIPATION.match(location):
                started.failure(f"the test did not start ({started.status_code} {location!r})")
                return
        self.page = location

    def _answer(self) -> None:
        with self.client.get(self.page, name="/p/{slug}/{id}", catch_response=True) as page:
            hidden = dict(_HIDDEN.findall(page.text))
            if page.status_code != 200 or "challenge_id" not in hidden:
                page.failure(f"no challenge on the test page ({page.status_code})")
                self.page = ""
                return
        choices = _CHOICES.findall(page.text)
        if hidden.get("type") == "short_text" or not choices:
            form = {"answer": "je ne sais pas"}
        else:
            form = {"answer": random.choice(choices)}
        with self.client.post(
            self.page,
            data={"_csrf_token": _csrf(page.text), **hidden, **form},
            name="POST /p/{slug}/{id} (answer)",
            allow_redirects=False,
            catch_response=True,
        ) as sent:
            location = sent.headers.get("location", "")
            if sent.status_code != 303 or location not in (self.page, self.page + "/results"):
                sent.failure(f"the answer was not accepted ({sent.status_code} {location!r})")
                self.page = ""
                return
        participation = self.page.rsplit("/", 1)[1]
        ANSWERS[participation] += 1
        if location.endswith("/results"):
            with self.client.get(
                location, name="/p/{slug}/{id}/results", catch_response=True
            ) as results:
                if results.status_code != 200:
                    results.failure(f"no results page ({results.status_code})")
            COMPLETED.add(participation)
            self.page = ""
