"""One failing vendor never blocks the others: each upstream down, refused, hung, slow past the deadline,
answering garbage, or rate limiting, while the other source still answers in time."""

from __future__ import annotations

import time

import pytest

from supportlens.customers.cache import MemoryCache
from supportlens.customers.directory import CustomerDirectory
from supportlens.customers.query import parse_query
from supportlens.integrations.clients import build_clients
from supportlens.search.sources import search_all
from tests.integrations.sims import Sims
from tests.search.conftest import DEADLINE

SLACK = 0.8  # scheduling slack on a loaded machine

MODES = {
    "down": {"error_rate": 1.0, "error_status": 503},
    "hang": {"hang": True, "hang_seconds": 30.0},
    "slow": {"latency_ms": (DEADLINE + 1.5) * 1000},
    "malformed": {"malformed_always": True},
    "rate_limited": {"force_429_always": True},
}
EXPECTED = {
    "down": "error",
    "hang": "timeout",
    "slow": "timeout",
    "malformed": "error",
    "rate_limited": "error",
}


@pytest.mark.parametrize("vendor", ["hubspot", "dwolla"])
@pytest.mark.parametrize("mode", list(MODES))
async def test_one_vendor_failing_leaves_the_other_answering_in_time(
    app, sims: Sims, vendor: str, mode: str
) -> None:
    getattr(sims, vendor).knobs(**MODES[mode])
    other = "dwolla" if vendor == "hubspot" else "hubspot"
    service = app.state.customer_directory
    started = time.monotonic()
    results = await search_all(service, parse_query("jane@acme.io"))
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + SLACK, f"{elapsed:.2f}s"
    failed, healthy = results[vendor], results[other]
    assert failed.status == EXPECTED[mode], (failed.status, failed.error)
    assert failed.items == [] and failed.error
    assert healthy.status == "ok", healthy.error
    assert len(healthy.items) == 1
    assert results["sessions"].status in ("ok", "error")


async def test_refused_connection_is_an_error_quickly(settings_factory, sims: Sims, sessionmaker) -> None:
    settings = settings_factory(**{**sims.settings(), "dwolla_base_url": "http://127.0.0.1:9"})
    hubspot, dwolla = build_clients(settings)
    service = CustomerDirectory(
        hubspot=hubspot,
        dwolla=dwolla,
        cache=MemoryCache(0, b"k"),
        sessionmaker=sessionmaker,
        deadline_seconds=DEADLINE,
        settings=settings,
    )
    try:
        started = time.monotonic()
        results = await search_all(service, parse_query("jane@acme.io"))
        assert time.monotonic() - started < DEADLINE + SLACK
        assert results["dwolla"].status == "error" and "connection failed" in (results["dwolla"].error or "")
        assert results["hubspot"].status == "ok" and results["hubspot"].items
    finally:
        await service.aclose()
        await hubspot.aclose()
        await dwolla.aclose()


async def test_429_then_success_is_ok_for_both(app, sims: Sims) -> None:
    sims.hubspot.knobs(force_429_next=1)
    sims.dwolla.knobs(force_429_next=1)
    results = await search_all(app.state.customer_directory, parse_query("jane@acme.io"))
    assert results["hubspot"].status == "ok" and results["dwolla"].status == "ok"
    assert sims.hubspot.count("forced_429") == 1 and sims.dwolla.count("forced_429") == 1


async def test_failing_api_answer_over_http(signed_in, sims: Sims) -> None:
    sims.dwolla.knobs(error_rate=1.0, error_status=500)
    agent = await signed_in("agent")
    started = time.monotonic()
    body = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    assert time.monotonic() - started < DEADLINE + SLACK
    assert body["dwolla"]["status"] == "error" and body["dwolla"]["items"] == []
    assert body["hubspot"]["status"] == "ok"
    assert body["correlation"]["status"] == "unavailable"
    # The failure is not cached: once Dwolla recovers, the same search answers.
    sims.dwolla.knobs(error_rate=0.0)
    body = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    assert body["dwolla"]["status"] == "ok"
