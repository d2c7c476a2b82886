"""Two app processes (`supportlens serve`) on different ports share one PostgreSQL and one Redis:
a login made on A is valid on B, search answers on both, and ingest on A, mapped by the replicas'
in-process workers, is read on B. (A due periodic task runs once across workers: tests/tasks.)"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from supportlens.capture import sites
from supportlens.tasks.status import wait_until_drained
from tests.support.agents import PASSWORD, csrf_from, make_agent
from tests.support.browsers import BROWSER
from tests.support.live import free_port

REDIS_URL = os.environ.get("SUPPORTLENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
ORIGIN = "https://shop.example"


class Replica:
    def __init__(self, name: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supportlens.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, deadline: float) -> None:
        async with httpx2.AsyncClient(headers=BROWSER, base_url=self.url, timeout=2) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"replica {self.name} exited:\n{self.log.read_text()[-3000:]}")
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"replica {self.name} not ready:\n{self.log.read_text()[-3000:]}")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
async def replicas(database_url, engine, tmp_path) -> AsyncIterator[tuple[Replica, Replica]]:
    env = {
        **os.environ,
        "SUPPORTLENS_ENVIRONMENT": "test",
        "SUPPORTLENS_DATABASE_URL": database_url,
        "SUPPORTLENS_REDIS_URL": REDIS_URL,
        "SUPPORTLENS_SECRET_KEY": "test-secret-key-not-for-production",
        "SUPPORTLENS_RUN_WORKER": "true",
        "SUPPORTLENS_SEARCH_CACHE_SECONDS": "30",
        "SUPPORTLENS_LOG_JSON": "true",
        "SUPPORTLENS_LOG_LEVEL": "INFO",
        "SUPPORTLENS_HUBSPOT_BASE_URL": "http://127.0.0.1:9",
        "SUPPORTLENS_DWOLLA_BASE_URL": "http://127.0.0.1:9",
        "SUPPORTLENS_CLARITY_EXPORT_BASE_URL": "http://127.0.0.1:9",
        "SUPPORTLENS_CLARITY_RECORDINGS_BASE_URL": "http://127.0.0.1:9",
        "SUPPORTLENS_SEARCH_SOURCE_DEADLINE_SECONDS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    a = Replica("A", free_port(), env, tmp_path / "a.log")
    b = Replica("B", free_port(), env, tmp_path / "b.log")
    try:
        deadline = asyncio.get_running_loop().time() + 30
        await asyncio.gather(a.wait_ready(deadline), b.wait_ready(deadline))
        yield a, b
    finally:
        a.stop()
        b.stop()


async def _sign_in(base_url: str, email: str) -> tuple[str, str]:
    """Sign in through A's login form; returns (session cookie value, CSRF token of the session)."""
    async with httpx2.AsyncClient(headers=BROWSER, base_url=base_url) as c:
        page = await c.get("/login")
        resp = await c.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
        )
        assert resp.status_code == 303, resp.text
        cookie = c.cookies.get("sl_session")
        assert cookie
        home = await c.get("/", headers={"Accept": "text/html"})
        m = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
        assert m
        return cookie, m.group(1)


async def test_login_search_ingest_and_a_job_across_two_replicas(replicas, sessionmaker, engine):
    a, b = replicas
    agent = await make_agent(sessionmaker, role="agent", email="two.replicas@example.com")
    async with sessionmaker() as db:
        _site, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id="p1")

    # 1. a login made on A is a valid session on B (server-side sessions in the database)
    cookie, _csrf = await _sign_in(a.url, agent.email)
    jar = {"sl_session": cookie}
    async with httpx2.AsyncClient(headers=BROWSER, base_url=b.url, cookies=jar, timeout=10) as on_b:
        assert (await on_b.get("/api/search/history")).status_code == 200
    async with httpx2.AsyncClient(headers=BROWSER, base_url=b.url, timeout=10) as anonymous:
        assert (await anonymous.get("/api/search/history")).status_code == 401

    # 2. ingest on A ...
    email = f"jane.{uuid.uuid4().hex[:6]}@acme.io"
    now = datetime.now(UTC)
    batch = {
        "siteKey": key,
        "clarity": {"projectId": "p1", "userId": "u-two", "sessionId": uuid.uuid4().hex[:10], "pageNum": 1},
        "customer": {"email": email, "id": "cus_1", "name": "Jane Replica"},
        "consent": {"analytics": True},
        "page": {"url": f"{ORIGIN}/pay", "title": "Pay", "referrer": "", "viewport": {"w": 1280, "h": 800}},
        "events": [
            {
                "id": str(uuid.uuid4()),
                "type": "click",
                "ts": (now - timedelta(seconds=i)).isoformat(),
                "url": f"{ORIGIN}/pay",
                "selector": "button#pay",
                "x": 10,
                "y": 20,
                "data": {"text": "Pay"},
            }
            for i in range(5)
        ],
    }
    async with httpx2.AsyncClient(headers=BROWSER, base_url=a.url, timeout=10) as c:
        resp = await c.post("/api/ingest/v1/events", json=batch, headers={"Origin": ORIGIN})
        assert resp.status_code == 202, resp.text
        assert resp.json()["accepted"] == 5
        again = await c.post("/api/ingest/v1/events", json=batch, headers={"Origin": ORIGIN})
        assert again.json() == {"accepted": 0, "duplicates": 5}
    await wait_until_drained(async_sessionmaker(engine), within=30)  # one of the two workers mapped it

    # ... is visible on B, and B's search finds the session while HubSpot/Dwolla are down (per-source status)
    for replica in (b, a):
        async with httpx2.AsyncClient(headers=BROWSER, base_url=replica.url, cookies=jar, timeout=10) as c:
            listed = await c.get("/api/clarity/sessions", params={"customer": email})
            assert listed.status_code == 200, listed.text
            items = listed.json()["items"]
            assert len(items) == 1
            events = await c.get(f"/api/clarity/sessions/{items[0]['id']}/events")
            assert events.status_code == 200
            assert len(events.json()["items"]) == 5
            found = await c.get("/api/search", params={"q": email})
            assert found.status_code == 200, found.text
            body = found.json()
            assert body["sessions"]["status"] == "ok"
            assert [s["id"] for s in body["sessions"]["items"]] == [items[0]["id"]]
            assert body["hubspot"]["status"] in ("error", "timeout")
            assert body["dwolla"]["status"] in ("error", "timeout")

    # 3. both report the (empty) mapping queue
    for replica in (a, b):
        async with httpx2.AsyncClient(headers=BROWSER, base_url=replica.url, timeout=10) as c:
            ready = (await c.get("/readyz")).json()
        assert ready["queue"]["todo"] == 0 and ready["queue"]["failed"] == 0

    # logs of both replicas are JSON lines carrying the request id of the request served
    a.stop()
    b.stop()
    log_a = a.log.read_text()
    rid_lines = [
        line for line in log_a.splitlines() if '"request_id"' in line and '"event": "request"' in line
    ]
    assert rid_lines, log_a[-2000:]
