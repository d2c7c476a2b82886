"""Load model for `bench/load/run.py` (headless locust): support agents and websites at once.

- `Agent` (50): signs in with an API token and, every `SUPPORTLENS_LOAD_THINK` seconds (default 8-16,
  the time an agent spends reading what they found), investigates a customer of the demo world:
  searches by e-mail, name or phone (`/api/search`), lists the customer's sessions, opens one
  (the session page, then the detail, events and timeline APIs it uses).
- `Site` (20): a company website whose visitors' browsers send ingest batches (10-30 events,
  sendBeacon-style `text/plain`) every 0.5-1.5 s, from many visitor addresses (X-Forwarded-For,
  believed because the load generator is the app's trusted proxy), half of them signed in.

Configuration comes from the JSON file named by SUPPORTLENS_LOAD_CONFIG (written by run.py):
{"token": ..., "sites": [{"key": ..., "origin": ...}], "customers": [{"email", "name", "phone"}]}.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gevent
from locust import HttpUser, between, events, task

# Visitors' browsers (a client library's own User-Agent is automated traffic, never mapped).
BROWSER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

CONFIG = json.loads(Path(os.environ["SUPPORTLENS_LOAD_CONFIG"]).read_text())
THINK = tuple(float(x) for x in os.environ.get("SUPPORTLENS_LOAD_THINK", "8,16").split(","))
N_AGENTS = int(os.environ.get("SUPPORTLENS_LOAD_AGENTS", "50"))
N_SITES = int(os.environ.get("SUPPORTLENS_LOAD_SITES", "20"))
EVENT_TYPES = [
    "navigation",
    "click",
    "click",
    "click",
    "scroll",
    "scroll",
    "error",
    "form_submit",
    "rage_click",
]
PAGES = ["/", "/pricing", "/login", "/account", "/pay", "/checkout", "/transfers", "/help"]


def time_left_of_a_think(rng: random.Random) -> float:
    """How long an agent seen at a random instant still reads before its next search. A random instant
    falls in a longer think more often (in proportion to its length), then anywhere inside it; this
    keeps the desk's search rate at its steady value from the first second."""
    low, high = THINK
    think = (low * low + rng.random() * (high * high - low * low)) ** 0.5  # density in proportion to t
    return rng.random() * think


# Every request's exact time, for run.py's percentiles (locust's own round times above 100 ms to the
# nearest 10 ms, which can hide a tail sitting just above a target).
_TIMES = open(os.environ["SUPPORTLENS_LOAD_TIMES"], "a", buffering=1 << 16)


@events.request.add_listener
def _record_time(request_type: str, name: str, response_time: float, exception: object, **_: object) -> None:
    failed = int(exception is not None)
    _TIMES.write(f"{time.time():.3f}\t{request_type} {name}\t{response_time:.2f}\t{failed}\n")


@events.quitting.add_listener
def _close_times(**_: object) -> None:
    _TIMES.close()


class Agent(HttpUser):
    fixed_count = N_AGENTS
    wait_time = between(*THINK)

    def on_start(self) -> None:
        token = CONFIG["token"]
        self.client.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.rng = random.Random()
        # A desk mid-shift: each agent joins at a random point of its reading time, not with a search
        # the moment it starts (ten such searches a second while agents ramp up would be a burst no
        # desk makes, queued behind HubSpot's 5 searches per second into the measured window).
        gevent.sleep(time_left_of_a_think(self.rng))

    @task
    def investigate(self) -> None:
        customer = self.rng.choice(CONFIG["customers"])
        how = self.rng.random()
        q = customer["email"] if how < 0.6 else customer["name"] if how < 0.85 else customer["phone"]
        with self.client.get("/api/search", params={"q": q}, name="/api/search", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            body = r.json()
            if body.get("sessions", {}).get("status") != "ok":
                r.failure(f"sessions source: {body.get('sessions', {}).get('status')}")
                return
        listed = self.client.get(
            "/api/clarity/sessions",
            params={"customer": customer["email"], "limit": 10},
            name="/api/clarity/sessions?customer=",
        )
        if listed.status_code != 200:
            return
        items = listed.json().get("items", [])
        if not items:
            return
        sid = self.rng.choice(items[:5])["id"]
        self.client.get(f"/sessions/{sid}", headers={"Accept": "text/html"}, name="/sessions/{id} (page)")
        self.client.get(f"/api/clarity/sessions/{sid}", name="/api/clarity/sessions/{id}")
        self.client.get(
            f"/api/clarity/sessions/{sid}/events",
            params={"limit": 200},
            name="/api/clarity/sessions/{id}/events",
        )
        self.client.get(f"/api/clarity/sessions/{sid}/timeline", name="/api/clarity/sessions/{id}/timeline")


class Site(HttpUser):
    fixed_count = N_SITES
    wait_time = between(0.5, 1.5)
    _next_site = 0

    def on_start(self) -> None:
        site = CONFIG["sites"][Site._next_site % len(CONFIG["sites"])]
        Site._next_site += 1
        self.key, self.origin = site["key"], site["origin"]
        self.rng = random.Random()
        self.visitors: list[dict] = []

    def _visitor(self) -> dict:
        if not self.visitors or self.rng.random() < 0.1:
            customer = self.rng.choice(CONFIG["customers"]) if self.rng.random() < 0.5 else None
            self.visitors.append(
                {
                    "user": uuid.uuid4().hex[:12],
                    "session": uuid.uuid4().hex[:12],
                    "ip": ".".join(["10", *(str(self.rng.randrange(1, 255)) for _ in range(3))]),
                    "customer": customer,
                    "page": 1,
                }
            )
            self.visitors = self.visitors[-30:]
        return self.rng.choice(self.visitors)

    @task
    def send_batch(self) -> None:
        v = self._visitor()
        v["page"] += 1
        now = datetime.now(UTC)
        url = f"{self.origin}{self.rng.choice(PAGES)}"
        events = [
            {
                "id": str(uuid.uuid4()),
                "type": self.rng.choice(EVENT_TYPES),
                "ts": (now - timedelta(milliseconds=200 * i)).isoformat().replace("+00:00", "Z"),
                "url": url,
                "selector": "button#pay",
                "x": self.rng.randrange(1280),
                "y": self.rng.randrange(800),
                "data": {"text": "Pay"},
            }
            for i in range(self.rng.randint(10, 30))
        ]
        c = v["customer"]
        batch = {
            "siteKey": self.key,
            "clarity": {
                "projectId": "load1",
                "userId": v["user"],
                "sessionId": v["session"],
                "pageNum": v["page"],
            },
            "customer": {"email": c["email"], "name": c["name"]} if c else None,
            "consent": {"analytics": True},
            "page": {"url": url, "title": "Shop", "referrer": "", "viewport": {"w": 1280, "h": 800}},
            "events": events,
        }
        with self.client.post(
            "/api/ingest/v1/events",
            data=json.dumps(batch),
            headers={
                "Content-Type": "text/plain",
                "Origin": self.origin,
                "X-Forwarded-For": v["ip"],
                "User-Agent": BROWSER_AGENT,  # as supportlens.js in a visitor's browser
            },
            name="/api/ingest/v1/events",
            catch_response=True,
        ) as r:
            if r.status_code != 202:
                r.failure(f"status {r.status_code}: {r.text[:200]}")
            elif r.json().get("accepted", 0) + r.json().get("duplicates", 0) != len(events):
                r.failure("events lost")
