"""Every kind of Dwolla simulator answer, for every demo customer, validates against Dwolla's OpenAPI spec."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, HAL, create_dwolla_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.sandbox.dwolla import spec

WORLD = demo_world()


@pytest.fixture
async def dwolla() -> AsyncIterator[httpx2.AsyncClient]:
    app = create_dwolla_app(WORLD, Knobs())
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://dwolla.test"
    ) as client:
        token = await client.post(
            "/token", auth=(DWOLLA_KEY, DWOLLA_SECRET), data={"grant_type": "client_credentials"}
        )
        spec.validate("POST", "/token", token.status_code, token.headers["content-type"], token.json())
        client.headers.update({"authorization": f"Bearer {token.json()['access_token']}", "accept": HAL})
        client.app = app  # type: ignore[attr-defined]
        yield client


async def get(client: httpx2.AsyncClient, url: str, **params: Any) -> httpx2.Response:
    r = await client.get(url, params=params or None)
    spec.validate("GET", r.url.path, r.status_code, r.headers["content-type"], r.json())
    return r


async def test_every_customer_and_its_money_matches_the_spec(dwolla: httpx2.AsyncClient) -> None:
    listed: list[dict[str, Any]] = []
    url: str | None = "/customers?limit=100"
    while url:
        page = (await get(dwolla, url)).json()
        listed.extend(page["_embedded"]["customers"])
        url = page["_links"].get("next", {}).get("href")
    assert len(listed) == len(WORLD.dwolla_customers)
    assert {c["type"] for c in listed} == {"personal", "business", "unverified", "receive-only"}
    checked = 0
    for customer in listed:
        await get(dwolla, customer["_links"]["self"]["href"])
        sources = (await get(dwolla, customer["_links"]["funding-sources"]["href"])).json()
        for fs in sources["_embedded"]["funding-sources"]:
            await get(dwolla, fs["_links"]["self"]["href"])
            if "balance" in fs["_links"]:
                await get(dwolla, fs["_links"]["balance"]["href"])
        transfers = (await get(dwolla, customer["_links"]["transfers"]["href"], limit=200)).json()
        for t in transfers["_embedded"]["transfers"]:
            if "failure" in t["_links"]:
                failure = (await get(dwolla, t["_links"]["failure"]["href"])).json()
                assert failure["code"].startswith("R")
                await get(dwolla, t["_links"]["self"]["href"])
        checked += 1
    assert checked == len(WORLD.dwolla_customers)


async def test_error_answers_match_the_spec(dwolla: httpx2.AsyncClient) -> None:
    jane = WORLD.customer("jane@acme.io")
    assert (await get(dwolla, "/customers/not-a-uuid")).json()["code"] == "NotFound"
    assert (await get(dwolla, "/transfers/00000000-0000-4000-8000-000000000000")).status_code == 404
    bad = await get(dwolla, f"/customers/{jane.dwolla_id}/transfers", startDate="yesterday", status="lost")
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["_embedded"]["errors"]} == {"/startDate", "/status"}
    unauthorised = await dwolla.get("/customers", headers={"authorization": "Bearer nope"})
    spec.validate("GET", "/customers", 401, unauthorised.headers["content-type"], unauthorised.json())
    assert unauthorised.json()["code"] == "InvalidAccessToken"
    no_version = await dwolla.get("/customers", headers={"accept": "application/json"})
    assert no_version.status_code == 406 and no_version.json()["code"] == "InvalidVersion"
    control = dwolla.app.state.sandbox  # type: ignore[attr-defined]
    control.update(force_429_next=1, fail_next=1, error_status=500)
    throttled = await get(dwolla, "/customers")
    assert throttled.status_code == 429 and throttled.json()["code"] == "TooManyRequests"
    broken = await get(dwolla, "/customers")
    assert broken.status_code == 500 and broken.json()["code"] == "ServerError"
    assert (await get(dwolla, "/customers")).status_code == 200


async def test_transfer_filters_and_paging(dwolla: httpx2.AsyncClient) -> None:
    busiest = max(WORLD.dwolla_customers, key=lambda c: len(c.transfers))
    path = f"/customers/{busiest.dwolla_id}/transfers"
    first = (await get(dwolla, path, limit=2)).json()
    assert first["total"] == len(busiest.transfers)
    assert [t["id"] for t in first["_embedded"]["transfers"]] == [t.id for t in busiest.transfers[:2]]
    assert "offset=2" in first["_links"]["next"]["href"] and "prev" not in first["_links"]
    last = (await get(dwolla, first["_links"]["last"]["href"])).json()
    assert "next" not in last["_links"] and "prev" in last["_links"]
    processed = (await get(dwolla, path, status="processed", limit=200)).json()
    assert processed["total"] == sum(1 for t in busiest.transfers if t.status == "processed")
    assert "status=processed" in processed["_links"]["self"]["href"]
    big = (await get(dwolla, path, startAmount="500", limit=200)).json()
    assert all(float(t["amount"]["value"]) >= 500 for t in big["_embedded"]["transfers"])
    newest_day = busiest.transfers[0].created.date().isoformat()
    recent = (await get(dwolla, path, startDate=newest_day, limit=200)).json()
    assert busiest.transfers[0].id in {t["id"] for t in recent["_embedded"]["transfers"]}
    one = busiest.transfers[-1]
    by_correlation = (await get(dwolla, path, correlationId=one.correlation_id)).json()
    assert [t["id"] for t in by_correlation["_embedded"]["transfers"]] == [one.id]


async def test_the_validator_rejects_what_the_spec_forbids(dwolla: httpx2.AsyncClient) -> None:
    body = (await get(dwolla, f"/customers/{WORLD.customer('jane@acme.io').dwolla_id}")).json()
    for broken_change in (
        lambda b: b.update(status="sleeping"),  # not a status of a personal customer
        lambda b: b.pop("address1"),  # verified personal customers carry an address
        lambda b: b.pop("email"),
        lambda b: b.update(created=12),
    ):
        broken = copy.deepcopy(body)
        broken_change(broken)
        with pytest.raises(AssertionError, match="does not match"):
            spec.validate("GET", "/customers/x", 200, HAL, broken)
    transfers = (await get(dwolla, f"/customers/{WORLD.customer('jane@acme.io').dwolla_id}/transfers")).json()
    transfers["_embedded"]["transfers"][0]["amount"]["value"] = 225.0
    with pytest.raises(AssertionError, match="does not match"):
        spec.validate("GET", "/customers/x/transfers", 200, HAL, transfers)
