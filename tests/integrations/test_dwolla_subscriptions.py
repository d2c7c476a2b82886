"""Our Dwolla client: webhook subscriptions and a transfer read by id with its failure, against the
simulator (which speaks Dwolla's wire format); a webhook it sends verifies with our own module."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request, Response

from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.dwolla.return_codes import describe
from supportlens.integrations.dwolla.webhooks import SIGNATURE_HEADER, verify_webhook
from supportlens.integrations.errors import UpstreamBadResponse, UpstreamNotFound
from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")


@pytest.fixture(scope="module")
def dwolla_sim() -> Iterator[tuple[Any, LiveServer]]:
    app = create_dwolla_app(WORLD, Knobs(webhook_retry_scale=0.0001))
    with LiveServer(app) as live:
        yield app, live


@pytest.fixture
def make_client(settings_factory, dwolla_sim) -> Callable[[], DwollaClient]:
    def make() -> DwollaClient:
        return DwollaClient(
            settings_factory(
                dwolla_base_url=dwolla_sim[1].url, dwolla_key=DWOLLA_KEY, dwolla_secret=DWOLLA_SECRET
            )
        )

    return make


async def test_create_list_pause_and_delete_a_subscription(make_client) -> None:
    dwolla = make_client()
    try:
        created = await dwolla.create_webhook_subscription(
            "https://supportlens.example.com/api/webhooks/dwolla", "s3"
        )
        assert (
            created.url == "https://supportlens.example.com/api/webhooks/dwolla" and created.paused is False
        )
        assert created.id in [s.id for s in await dwolla.list_webhook_subscriptions()]
        assert (await dwolla.set_webhook_subscription_paused(created.id, True)).paused is True
        deleted = await dwolla.delete_webhook_subscription(created.id)
        assert deleted.id == created.id
        assert created.id not in [s.id for s in await dwolla.list_webhook_subscriptions()]
        with pytest.raises(UpstreamNotFound):
            await dwolla.delete_webhook_subscription(created.id)
        with pytest.raises(UpstreamBadResponse) as invalid:
            await dwolla.create_webhook_subscription("not a url", "s3")
        assert invalid.value.status == 400 and invalid.value.code == "ValidationError"
    finally:
        await dwolla.aclose()


async def test_a_transfer_by_id_with_its_failure_in_plain_words(make_client) -> None:
    dwolla = make_client()
    try:
        failed = next(t for t in JANE.transfers if t.status == "failed")
        detail = await dwolla.get_transfer(failed.id)
        assert detail.customer_id == JANE.dwolla_id
        assert detail.transfer.status == "failed" and detail.transfer.direction == "out"
        assert (detail.transfer.failure_code, detail.transfer.failure_description) == (
            "R01",
            "Insufficient Funds",
        )
        assert describe(detail.transfer.failure_code).plain.startswith("insufficient funds")  # type: ignore[union-attr]
        processed = next(t for t in JANE.transfers if t.status == "processed")
        assert (await dwolla.get_transfer(processed.id)).transfer.failure_code is None
        with pytest.raises(UpstreamNotFound):
            await dwolla.get_transfer("00000000-0000-4000-8000-000000000000")
    finally:
        await dwolla.aclose()


async def test_a_subscription_made_by_our_client_gets_webhooks_that_verify(make_client, dwolla_sim) -> None:
    received: list[tuple[bytes, str | None]] = []
    hooks = FastAPI()

    @hooks.post("/dwolla")
    async def hook(request: Request) -> Response:
        received.append((await request.body(), request.headers.get(SIGNATURE_HEADER)))
        return Response(status_code=200)

    dwolla = make_client()
    with LiveServer(hooks) as receiver:
        try:
            sub = await dwolla.create_webhook_subscription(f"{receiver.url}/dwolla", "our-secret")
            async with httpx2.AsyncClient() as http:
                sent = (
                    await http.post(
                        f"{dwolla_sim[1].url}/__sandbox/transfer-failures",
                        json={"customerId": JANE.dwolla_id, "amount": "42.00", "code": "R16"},
                    )
                ).json()
            for _ in range(200):
                if received:
                    break
                await asyncio.sleep(0.02)
            [(body, signature)] = received
            event = verify_webhook(body, signature, ["our-secret"], now=datetime.now(UTC))
            assert event.resource_id == sent["transferId"] and event.is_failed_transfer
            detail = await dwolla.get_transfer(event.resource_id)
            assert (detail.customer_id, detail.transfer.amount, detail.transfer.failure_code) == (
                JANE.dwolla_id,
                "42.00",
                "R16",
            )
            await dwolla.delete_webhook_subscription(sub.id)
        finally:
            await dwolla.aclose()
