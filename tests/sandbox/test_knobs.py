"""Simulator knobs over real HTTP: latency, 5xx, forced 429, hang, malformed JSON, admin endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx2
import pytest

from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, HAL, create_dwolla_app
from supportlens_sandbox.hubspot import HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import KnobError, Knobs, SandboxControl, areset_remote, aset_remote_knobs
from supportlens_sandbox.world import demo_world
from tests.support.live import LiveServer

WORLD = demo_world()
AUTH = {"authorization": f"Bearer {HUBSPOT_TOKEN}"}
CONTACT = "/crm/v3/objects/contacts/101"


@pytest.fixture(scope="module")
def hubspot() -> Iterator[LiveServer]:
    with LiveServer(create_hubspot_app(WORLD, Knobs(general_per_10s=10_000))) as live:
        yield live


@pytest.fixture(scope="module")
def dwolla() -> Iterator[LiveServer]:
    with LiveServer(create_dwolla_app(WORLD)) as live:
        yield live


@pytest.fixture(autouse=True)
async def reset(hubspot: LiveServer, dwolla: LiveServer) -> None:
    await areset_remote(hubspot.url)
    await areset_remote(dwolla.url)


async def test_added_latency(hubspot: LiveServer) -> None:
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        start = time.perf_counter()
        assert (await client.get(CONTACT)).status_code == 200
        fast = time.perf_counter() - start
        knobs = await aset_remote_knobs(hubspot.url, latency_ms=200)
        assert knobs["latency_ms"] == 200
        start = time.perf_counter()
        assert (await client.get(CONTACT)).status_code == 200
        assert time.perf_counter() - start >= 0.2 > fast
        # The admin endpoints themselves are never slowed down.
        start = time.perf_counter()
        await client.get("/__sandbox/knobs")
        assert time.perf_counter() - start < 0.2


async def test_error_rate_is_seeded_and_deterministic(hubspot: LiveServer) -> None:
    async def statuses() -> list[int]:
        await aset_remote_knobs(hubspot.url, error_rate=0.3, seed=42)
        async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
            return [(await client.get(CONTACT)).status_code for _ in range(30)]

    first, second = await statuses(), await statuses()
    assert first == second
    assert set(first) == {200, 503} and 3 <= first.count(503) <= 18


async def test_fail_next_and_forced_429(hubspot: LiveServer) -> None:
    await aset_remote_knobs(hubspot.url, fail_next=2, error_status=500, force_429_next=1)
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        answers = [await client.get(CONTACT) for _ in range(4)]
    assert [r.status_code for r in answers] == [429, 500, 500, 200]
    assert answers[0].json()["errorType"] == "RATE_LIMIT"
    assert answers[1].json()["category"] == "INTERNAL_ERROR"
    await aset_remote_knobs(hubspot.url, force_429_always=True)
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        assert {(await client.get(CONTACT)).status_code for _ in range(3)} == {429}


async def test_gateway_errors_are_html_like_the_real_edge(hubspot: LiveServer) -> None:
    await aset_remote_knobs(hubspot.url, fail_next=1, error_status=502)
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        r = await client.get(CONTACT)
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")


async def test_hang_until_the_client_gives_up_then_recovers(hubspot: LiveServer) -> None:
    await aset_remote_knobs(hubspot.url, hang=True)
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        start = time.perf_counter()
        with pytest.raises(httpx2.ReadTimeout):
            await client.post("/crm/v3/objects/contacts/search", json={"query": "jane"}, timeout=0.3)
        assert time.perf_counter() - start < 2
        # A held request is released (with its body intact) once hang is switched off.
        held = asyncio.create_task(
            client.post("/crm/v3/objects/contacts/search", json={"query": "jane"}, timeout=5)
        )
        await asyncio.sleep(0.3)
        assert not held.done()
        await aset_remote_knobs(hubspot.url, hang=False)
        released = await held
        assert released.status_code == 200 and released.json()["total"] == 1


async def test_malformed_json(hubspot: LiveServer, dwolla: LiveServer) -> None:
    await aset_remote_knobs(hubspot.url, malformed_next=1)
    async with httpx2.AsyncClient(base_url=hubspot.url, headers=AUTH) as client:
        broken = await client.get(CONTACT)
        assert broken.status_code == 200 and broken.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.content)
        assert (await client.get(CONTACT)).json()["id"] == "101"
    await aset_remote_knobs(dwolla.url, malformed_always=True)
    async with httpx2.AsyncClient(base_url=dwolla.url) as client:
        r = await client.post(
            "/token", auth=(DWOLLA_KEY, DWOLLA_SECRET), data={"grant_type": "client_credentials"}
        )
        assert r.headers["content-type"] == HAL
        with pytest.raises(json.JSONDecodeError):
            r.json()


async def test_path_prefix_limits_the_knobs(dwolla: LiveServer) -> None:
    await aset_remote_knobs(dwolla.url, path_prefix="/customers", force_429_always=True)
    async with httpx2.AsyncClient(base_url=dwolla.url) as client:
        token = await client.post(
            "/token", auth=(DWOLLA_KEY, DWOLLA_SECRET), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 200
        headers = {"authorization": f"Bearer {token.json()['access_token']}", "accept": HAL}
        r = await client.get("/customers", headers=headers)
        assert r.status_code == 429 and r.json()["code"] == "TooManyRequests"
        jane = WORLD.customer("jane@acme.io")
        assert (await client.get(f"/transfers/{jane.transfers[0].id}", headers=headers)).status_code == 200


async def test_dwolla_token_ttl_and_rate_limit(dwolla: LiveServer) -> None:
    await aset_remote_knobs(dwolla.url, token_ttl_seconds=1, requests_per_second=3)
    async with httpx2.AsyncClient(base_url=dwolla.url) as client:
        token = await client.post(
            "/token", auth=(DWOLLA_KEY, DWOLLA_SECRET), data={"grant_type": "client_credentials"}
        )
        assert token.json()["expires_in"] == 1
        headers = {"authorization": f"Bearer {token.json()['access_token']}", "accept": HAL}
        codes = [
            (await client.get("/customers", params={"limit": 1}, headers=headers)).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        await asyncio.sleep(1.05)
        expired = await client.get("/customers", headers=headers)
        assert expired.status_code == 401 and expired.json()["code"] == "ExpiredAccessToken"


async def test_admin_endpoint_validates_and_reports(hubspot: LiveServer) -> None:
    async with httpx2.AsyncClient(base_url=hubspot.url) as client:
        bad = await client.post("/__sandbox/knobs", json={"latency": 5})
        assert bad.status_code == 400 and "unknown knob" in bad.json()["error"]
        assert (await client.post("/__sandbox/knobs", json={"error_rate": 2})).status_code == 400
        assert (await client.post("/__sandbox/knobs", json={"hang": "yes"})).status_code == 400
        assert (await client.post("/__sandbox/knobs", content=b"[1]")).status_code == 400
        await client.get(CONTACT, headers=AUTH)
        await client.post("/crm/v3/objects/contacts/search", json={}, headers=AUTH)
        stats = (await client.get("/__sandbox/stats")).json()
        assert (
            stats["simulator"] == "hubspot" and stats["counters"]["requests"] == 2 and stats["searches"] == 1
        )
        await client.post("/__sandbox/knobs", json={"latency_ms": 5})
        reset = (await client.post("/__sandbox/reset")).json()
        assert (
            reset["latency_ms"] == 0 and reset["general_per_10s"] == 10_000
        )  # back to this app's own defaults
        assert (await client.get("/__sandbox/stats")).json()["counters"] == {}


def test_control_in_code() -> None:
    control = SandboxControl("x", Knobs(seed=3))
    control.update(fail_next=1)
    assert control.decide().status == 503 and control.decide().status is None
    with pytest.raises(KnobError):
        control.update(nope=1)
    with pytest.raises(KnobError):
        control.update(latency_ms=-1)
    control.update(rate_limits=False)
    assert all(control.allow("k", 1, 1.0) for _ in range(5))
