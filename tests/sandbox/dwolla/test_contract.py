"""The official Dwolla SDK (dwollav2) talks to the Dwolla simulator; every answer matches the OpenAPI spec."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import dwollav2
import pytest

from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.world import demo_world
from tests.sandbox.dwolla.spec import Recorder
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
ROBERT = WORLD.customer("robert@initech.com")


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder(create_dwolla_app(WORLD))


@pytest.fixture(scope="module")
def server(recorder: Recorder) -> Iterator[LiveServer]:
    with LiveServer(recorder) as live:
        yield live


def sdk_client(url: str, key: str = DWOLLA_KEY, secret: str = DWOLLA_SECRET) -> dwollav2.Client:
    class SandboxClient(dwollav2.Client):
        ENVIRONMENTS = {
            **dwollav2.Client.ENVIRONMENTS,
            "local": {"auth_url": f"{url}/auth", "token_url": f"{url}/token", "api_url": url},
        }

    return SandboxClient(key=key, secret=secret, environment="local")


@pytest.fixture(scope="module")
def token(server: LiveServer) -> Any:
    return sdk_client(server.url).Auth.client()


async def call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_client_credentials_token(server: LiveServer, token: Any) -> None:
    assert token.access_token and token.expires_in == 3600
    with pytest.raises(dwollav2.error.InvalidClientError):
        await call(sdk_client(server.url, secret="wrong").Auth.client)


async def test_customers_by_exact_email_and_fuzzy_search(token: Any) -> None:
    res = await call(token.get, "customers", {"email": "jane@acme.io"})
    assert res.status == 200 and res.headers["content-type"].startswith("application/vnd.dwolla.v1.hal+json")
    [jane] = res.body["_embedded"]["customers"]
    assert (jane["id"], jane["firstName"], jane["status"], jane["type"]) == (
        JANE.dwolla_id,
        "Jane",
        "verified",
        "personal",
    )
    assert res.body["total"] == 1
    assert jane["_links"]["self"]["href"].endswith(f"/customers/{JANE.dwolla_id}")
    fuzzy = await call(token.get, "customers", {"search": "acme", "limit": 1})
    assert fuzzy.body["total"] == 2 and len(fuzzy.body["_embedded"]["customers"]) == 1
    assert set(fuzzy.body["_links"]) == {"self", "first", "last", "next"}
    second = await call(token.get, fuzzy.body["_links"]["next"]["href"])
    assert set(second.body["_links"]) == {"self", "first", "last", "prev"}
    bob = await call(token.get, "customers", {"search": "bob chen"})
    assert [c["id"] for c in bob.body["_embedded"]["customers"]] == [ROBERT.dwolla_id]
    suspended = await call(token.get, "customers", {"status": "suspended", "limit": 200})
    assert suspended.body["total"] == sum(1 for c in WORLD.dwolla_customers if c.dwolla_status == "suspended")


async def test_customer_transfers_newest_first_with_failure(token: Any) -> None:
    customer = await call(token.get, f"customers/{JANE.dwolla_id}")
    transfers = await call(token.get, customer.body["_links"]["transfers"]["href"])
    items = transfers.body["_embedded"]["transfers"]
    assert [t["id"] for t in items] == [t.id for t in JANE.transfers]
    created = [t["created"] for t in items]
    assert created == sorted(created, reverse=True)
    newest = items[0]
    assert newest["status"] == "failed" and newest["amount"] == {"value": "225.00", "currency": "USD"}
    failure = await call(token.get, newest["_links"]["failure"]["href"])
    assert failure.body["code"] == "R01" and failure.body["description"] == "Insufficient Funds"
    one = await call(token.get, f"transfers/{newest['id']}")
    assert one.body["id"] == newest["id"]
    failed_only = await call(token.get, f"customers/{ROBERT.dwolla_id}/transfers", {"status": "failed"})
    [r03] = failed_only.body["_embedded"]["transfers"]
    assert (await call(token.get, r03["_links"]["failure"]["href"])).body["code"] == "R03"


async def test_funding_sources_removed_filter_and_balance(token: Any) -> None:
    everything = await call(token.get, f"customers/{ROBERT.dwolla_id}/funding-sources")
    active = await call(token.get, f"customers/{ROBERT.dwolla_id}/funding-sources", {"removed": "false"})
    all_sources = everything.body["_embedded"]["funding-sources"]
    assert len(all_sources) == len(ROBERT.funding_sources)
    assert any(fs["removed"] for fs in all_sources)
    assert not any(fs["removed"] for fs in active.body["_embedded"]["funding-sources"])
    balance_fs = next(fs for fs in all_sources if fs["type"] == "balance")
    balance = await call(token.get, balance_fs["_links"]["balance"]["href"])
    assert balance.body["balance"]["currency"] == "USD"
    bank = next(fs for fs in all_sources if fs["type"] == "bank")
    assert (await call(token.get, f"funding-sources/{bank['id']}")).body["bankName"] == bank["bankName"]


async def test_sdk_errors_map_to_dwolla_codes(server: LiveServer, token: Any) -> None:
    with pytest.raises(dwollav2.error.NotFoundError):
        await call(token.get, "customers/00000000-0000-4000-8000-000000000000")
    with pytest.raises(dwollav2.error.ValidationError) as caught:
        await call(token.get, "customers", {"limit": 500})
    assert caught.value.body["_embedded"]["errors"][0]["path"] == "/limit"
    stranger = sdk_client(server.url).Token(access_token="not-a-token")
    with pytest.raises(dwollav2.error.InvalidAccessTokenError):
        await call(stranger.get, "customers")
    with pytest.raises(dwollav2.error.NotFoundError):
        await call(token.get, f"transfers/{JANE.transfers[1].id}/failure")  # processed: no failure


async def test_expired_token_and_renewal(server: LiveServer) -> None:
    import httpx2

    client = sdk_client(server.url)
    old = await call(client.Auth.client)
    async with httpx2.AsyncClient() as http:
        await http.post(f"{server.url}/__sandbox/expire-tokens")
    with pytest.raises(dwollav2.error.ExpiredAccessTokenError):
        await call(old.get, "customers")
    fresh = await call(client.Auth.client)
    assert (await call(fresh.get, "customers", {"limit": 1})).status == 200


async def test_every_response_so_far_matches_the_openapi_spec(recorder: Recorder) -> None:
    # Runs last in this module: everything the SDK received above, errors included.
    assert recorder.validate_all() >= 15
