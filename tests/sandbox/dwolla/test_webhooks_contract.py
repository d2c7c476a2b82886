"""Dwolla's webhook subscriptions and events in the simulator, through the official SDK (dwollav2):
signed deliveries when a transfer fails, Dwolla's retries, and every answer checked against the
OpenAPI spec."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dwollav2
import httpx2
import pytest
from fastapi import FastAPI, Request, Response
from jsonschema import Draft202012Validator

from supportlens.integrations.dwolla.webhooks import SIGNATURE_HEADER, verify_webhook
from supportlens_sandbox.dwolla import create_dwolla_app
from supportlens_sandbox.dwolla.webhooks import RETRY_DELAYS
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.sandbox.dwolla.spec import BASE, Recorder, registry
from tests.sandbox.dwolla.test_contract import call, sdk_client
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
SECRET = "whsec-sandbox-3f9a"


class Receiver:
    """Our side of the webhooks: records each request, answers the statuses queued for its path."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes, float]] = []
        self.answers: dict[str, list[int]] = {}
        self.app = FastAPI()

        @self.app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> Response:
            self.calls.append((name, dict(request.headers), await request.body(), time.monotonic()))
            queued = self.answers.get(name)
            status = queued.pop(0) if queued else 200
            return Response(status_code=status, headers={"Location": "/elsewhere"} if status == 302 else {})

    def to(self, name: str) -> list[tuple[str, dict[str, str], bytes, float]]:
        return [c for c in self.calls if c[0] == name]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, LiveServer]]:
    got = Receiver()
    with LiveServer(got.app) as live:
        yield got, live


@pytest.fixture(scope="module")
def dwolla() -> Iterator[tuple[Any, Recorder, LiveServer]]:
    app = create_dwolla_app(WORLD, Knobs(webhook_retry_scale=0.0001))
    recorder = Recorder(app)
    with LiveServer(recorder) as live:
        yield app, recorder, live


@pytest.fixture(scope="module")
def token(dwolla: tuple[Any, Recorder, LiveServer]) -> Any:
    return sdk_client(dwolla[2].url).Auth.client()


async def subscribe(token: Any, url: str, secret: str = SECRET) -> str:
    created = await call(token.post, "webhook-subscriptions", {"url": url, "secret": secret})
    assert created.status == 201
    return str(created.headers["location"])


async def fail_transfer(sim_url: str, **body: Any) -> dict[str, Any]:
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"{sim_url}/__sandbox/transfer-failures", json=body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def settled(app: Any, event_id: str, timeout: float = 15.0) -> list[Any]:
    """The deliveries of an event once none is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in app.state.webhooks.deliveries if d.event_id == event_id]
        if found and all(d.state != "pending" for d in found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("deliveries still pending")


async def test_subscription_lifecycle_with_the_sdk(token: Any, receiver: Any) -> None:
    location = await subscribe(token, f"{receiver[1].url}/hooks/lifecycle")
    sub = await call(token.get, location)
    assert (sub.body["url"], sub.body["paused"]) == (f"{receiver[1].url}/hooks/lifecycle", False)
    assert "secret" not in sub.body and sub.body["_links"]["webhooks"]["href"].endswith("/webhooks")
    listed = await call(token.get, "webhook-subscriptions")
    assert sub.body["id"] in [s["id"] for s in listed.body["_embedded"]["webhook-subscriptions"]]
    assert listed.body["total"] == len(listed.body["_embedded"]["webhook-subscriptions"])
    paused = await call(token.post, location, {"paused": True})
    assert paused.body["paused"] is True
    assert (await call(token.post, location, {"paused": False})).body["paused"] is False
    with pytest.raises(dwollav2.Error) as bad:
        await call(token.post, location, {"paused": "yes"})
    assert bad.value.status == 400 and bad.value.body["code"] == "BadRequest"
    removed = await call(token.delete, location)
    assert removed.status == 200 and removed.body["id"] == sub.body["id"]
    with pytest.raises(dwollav2.error.NotFoundError):
        await call(token.get, location)


async def test_subscription_validation_errors(token: Any) -> None:
    cases = [
        ({"url": "not a url", "secret": SECRET}, "InvalidFormat", "/url"),
        ({"url": "ftp://example.com/x", "secret": SECRET}, "InvalidFormat", "/url"),
        ({"url": "https://example.com/hook", "secret": "s" * 129}, "InvalidFormat", "/secret"),
        ({"url": "https://example.com/hook"}, "Required", "/secret"),
    ]
    for body, code, path in cases:
        with pytest.raises(dwollav2.error.ValidationError) as caught:
            await call(token.post, "webhook-subscriptions", body)
        [problem] = caught.value.body["_embedded"]["errors"]
        assert (problem["code"], problem["path"]) == (code, path), body


async def test_a_failed_transfer_is_delivered_signed_and_readable(
    dwolla: Any, token: Any, receiver: Any
) -> None:
    app, _, live = dwolla
    got, receiver_live = receiver
    location = await subscribe(token, f"{receiver_live.url}/hooks/main")
    sent = await fail_transfer(live.url, customerId=JANE.dwolla_id, amount="99.5", code="R01")
    assert sent["deliveries"] >= 1
    [delivery] = [d for d in await settled(app, sent["eventId"]) if location.endswith(d.subscription_id)]
    assert delivery.state == "delivered" and [a.status for a in delivery.attempts] == [200]
    [(_, headers, body, _)] = got.to("main")
    assert headers["content-type"] == "application/json"
    event = verify_webhook(body, headers[SIGNATURE_HEADER.lower()], [SECRET], now=datetime.now(UTC))
    assert (event.topic, event.resource_id, event.customer_id) == (
        "customer_transfer_failed",
        sent["transferId"],
        JANE.dwolla_id,
    )
    assert event.id == sent["eventId"] and event.links["self"].endswith(f"/events/{event.id}")
    # The webhook body is Dwolla's event resource (plus `timestamp`): valid against the spec's Event schema.
    event_schema = Draft202012Validator({"$ref": f"{BASE}#/components/schemas/Event"}, registry=registry())
    assert list(event_schema.iter_errors(json.loads(body))) == []
    assert set(json.loads(body)) == {"_links", "id", "created", "timestamp", "topic", "resourceId"}
    assert set(json.loads(body)["_links"]) == {"self", "account", "resource", "customer"}

    transfer = await call(token.get, event.links["resource"])
    assert transfer.body["status"] == "failed" and transfer.body["amount"] == {
        "value": "99.50",
        "currency": "USD",
    }
    failure = await call(token.get, transfer.body["_links"]["failure"]["href"])
    assert (failure.body["code"], failure.body["description"]) == ("R01", "Insufficient Funds")
    newest = await call(token.get, f"customers/{JANE.dwolla_id}/transfers", {"limit": 1})
    assert newest.body["_embedded"]["transfers"][0]["id"] == sent["transferId"]
    events = await call(token.get, "events", {"limit": 5})
    assert events.body["_embedded"]["events"][0]["id"] == event.id
    one = await call(token.get, f"events/{event.id}")
    assert (one.body["topic"], one.body["resourceId"]) == (event.topic, event.resource_id)
    await call(token.delete, location)


async def test_an_existing_transfer_fails_in_this_simulator_only(dwolla: Any, token: Any) -> None:
    processed = next(t for t in JANE.transfers if t.status == "processed")
    sent = await fail_transfer(
        dwolla[2].url, transferId=processed.id, code="R10", topic="customer_bank_transfer_failed"
    )
    assert sent["transferId"] == processed.id
    failure = await call(token.get, f"transfers/{processed.id}/failure")
    assert failure.body["code"] == "R10"
    assert WORLD.transfers[processed.id].status == "processed"  # the shared demo world is untouched
    [event] = (await call(token.get, "events", {"limit": 1})).body["_embedded"]["events"]
    assert (event["topic"], event["resourceId"]) == ("customer_bank_transfer_failed", processed.id)


async def test_non_2xx_answers_are_retried_with_growing_waits(dwolla: Any, token: Any, receiver: Any) -> None:
    app, _, live = dwolla
    got, receiver_live = receiver
    got.answers["flaky"] = [500, 302, 404, 200]
    location = await subscribe(token, f"{receiver_live.url}/hooks/flaky")
    sent = await fail_transfer(live.url, customerId=JANE.dwolla_id, code="R02")
    [delivery] = [d for d in await settled(app, sent["eventId"]) if location.endswith(d.subscription_id)]
    assert delivery.state == "delivered"
    assert [a.status for a in delivery.attempts] == [
        500,
        302,
        404,
        200,
    ]  # a redirect is a failure, not followed
    calls = got.to("flaky")
    assert len({c[2] for c in calls}) == 1 and len({c[1][SIGNATURE_HEADER.lower()] for c in calls}) == 1
    gaps = [b[3] - a[3] for a, b in itertools.pairwise(calls)]
    scale = app.state.sandbox.knobs.webhook_retry_scale
    for gap, planned in zip(gaps, RETRY_DELAYS, strict=False):
        assert gap >= planned * scale * 0.9
    assert gaps[0] < gaps[1] < gaps[2]
    log = await call(token.get, f"{location}/webhooks")
    [webhook] = [w for w in log.body["_embedded"]["webhooks"] if w["eventId"] == sent["eventId"]]
    assert [a["response"]["statusCode"] for a in webhook["attempts"]] == [500, 302, 404, 200]
    assert webhook["attempts"][0]["request"]["body"] == calls[0][2].decode()
    assert webhook["topic"] == "customer_transfer_failed" and log.body["total"] == 1
    await call(token.delete, location)


async def test_retries_stop_after_eight(dwolla: Any, token: Any, receiver: Any) -> None:
    app, _, live = dwolla
    got, receiver_live = receiver
    app.state.sandbox.update(webhook_retry_scale=0.00001)  # 72 hours in 2.6 seconds
    try:
        got.answers["down"] = [503] * 20
        location = await subscribe(token, f"{receiver_live.url}/hooks/down")
        sent = await fail_transfer(live.url, customerId=JANE.dwolla_id, code="R03")
        [delivery] = [d for d in await settled(app, sent["eventId"]) if location.endswith(d.subscription_id)]
        assert delivery.state == "failed" and len(delivery.attempts) == 1 + len(RETRY_DELAYS) == 9
        assert len(got.to("down")) == 9
    finally:
        app.state.sandbox.update(webhook_retry_scale=0.0001)
    await call(token.delete, location)


async def test_paused_and_unreachable_subscriptions(dwolla: Any, token: Any, receiver: Any) -> None:
    app, _, live = dwolla
    got, receiver_live = receiver
    paused = await subscribe(token, f"{receiver_live.url}/hooks/paused")
    await call(token.post, paused, {"paused": True})
    nowhere = await subscribe(token, "http://127.0.0.1:9/hooks")  # nothing listens: connection refused
    sent = await fail_transfer(live.url, customerId=JANE.dwolla_id, code="R01")
    await asyncio.sleep(0.2)
    assert got.to("paused") == []
    [refused] = [d for d in app.state.webhooks.deliveries if d.event_id == sent["eventId"]]
    assert nowhere.endswith(refused.subscription_id) and refused.attempts[0].status is None
    await call(token.delete, nowhere)  # deleting stops the retries
    [stopped] = await settled(app, sent["eventId"])
    assert stopped.state == "cancelled"
    await call(token.delete, paused)


async def test_at_most_ten_subscriptions(receiver: Any) -> None:
    recorder = Recorder(create_dwolla_app(WORLD))
    with LiveServer(recorder) as live:
        token = await call(sdk_client(live.url).Auth.client)
        for n in range(10):
            await subscribe(token, f"{receiver[1].url}/hooks/n{n}")
        with pytest.raises(dwollav2.Error) as caught:
            await subscribe(token, f"{receiver[1].url}/hooks/eleven")
        assert caught.value.status == 400 and caught.value.body["code"] == "MaxNumberOfResources"
        assert recorder.validate_all() == 12  # token, 10 created (201 without a body), 1 refused


async def test_every_answer_matches_the_openapi_spec(dwolla: Any) -> None:
    # Runs last in this module: everything the SDK received above, errors included.
    assert dwolla[1].validate_all() >= 30
