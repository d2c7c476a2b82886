"""The HubSpot and Dwolla clients against the simulators, which speak the vendors' wire format."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from supportlens import metrics
from supportlens.config import Settings
from supportlens.customers.query import VendorTerms, parse_query
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.errors import UpstreamBadResponse, UpstreamRateLimited, UpstreamUnavailable
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens_sandbox.world import demo_world
from tests.integrations.sims import Sims


def terms_of(typed: str) -> VendorTerms:
    """What the search box hands a vendor client for `typed`."""
    return parse_query(typed).terms


JANE_DWOLLA = "5b29279d-6359-4c87-a318-e09095532733"


@pytest.fixture
def client_settings(settings_factory, sims: Sims) -> Settings:
    return settings_factory(**sims.settings())


async def test_hubspot_search_by_email_phone_name_and_company(client_settings: Settings) -> None:
    hubspot = HubSpotClient(client_settings)
    try:
        by_email = await hubspot.search_contacts(**terms_of("  Jane@ACME.io "))
        assert [c.email for c in by_email] == ["jane@acme.io"]
        jane = by_email[0]
        assert jane.name == "Jane Doe"
        assert jane.dwolla_id == JANE_DWOLLA
        assert jane.lifecycle_stage and jane.owner_id and jane.onboarding_step
        for typed in ("+1 415-555-0101", "(415) 555-0101", "415.555.0101"):
            assert [c.id for c in await hubspot.search_contacts(**terms_of(typed))] == [jane.id], typed
        assert jane.id in [c.id for c in await hubspot.search_contacts(**terms_of("jane doe"))]
        acme = await hubspot.search_contacts(**terms_of("Acme Inc"))
        assert {"jane@acme.io", "john.smith@acme.io"} <= {c.email for c in acme}
    finally:
        await hubspot.aclose()


async def test_hubspot_bundle_has_companies_deals_tickets_and_owner(client_settings: Settings) -> None:
    hubspot = HubSpotClient(client_settings)
    try:
        [jane] = await hubspot.search_contacts(**terms_of("jane@acme.io"))
        bundle = await hubspot.get_contact_bundle(jane.id)
        assert [c.name for c in bundle.companies] == ["Acme Inc"]
        assert bundle.tickets, "Jane has a ticket about her failed transfer"
        assert any("R01" in (t.subject or "") + (t.content or "") for t in bundle.tickets)
        assert bundle.contact.owner_name  # resolved from the owners list
        assert bundle.dwolla_id == JANE_DWOLLA
    finally:
        await hubspot.aclose()


async def test_dwolla_customers_transfers_and_funding_sources(client_settings: Settings) -> None:
    dwolla = DwollaClient(client_settings)
    try:
        [jane] = await dwolla.search_customers(**terms_of("JANE@acme.io"))
        assert jane.id == JANE_DWOLLA and jane.status == "verified"
        fuzzy = await dwolla.search_customers(**terms_of("Bob Chen"))
        assert [c.name for c in fuzzy] == ["Bob Chen"]
        assert (
            await dwolla.search_customers(**terms_of("+1 415-555-0101")) == []
        )  # Dwolla has no phone search
        transfers = await dwolla.list_transfers(jane.id)
        created = [t.created for t in transfers]
        assert created == sorted(created, reverse=True)  # newest first
        newest = transfers[0]
        assert newest.status == "failed" and newest.amount == "225.00"
        assert newest.failure_code == "R01" and newest.failure_description == "Insufficient Funds"
        assert all(t.failure_code is None for t in transfers if t.status != "failed")
        sources = await dwolla.list_funding_sources(jane.id)
        assert sources and all(not s.removed for s in sources)
        assert (await dwolla.get_customer(jane.id)).email == "jane@acme.io"
        assert dwolla.token_fetches == 1  # one token for all these calls
    finally:
        await dwolla.aclose()


def _unauthorized_count() -> float:
    return metrics.UPSTREAM_CALLS.labels("dwolla", "unauthorized")._value.get()


async def test_dwolla_token_renewed_once_after_401(client_settings: Settings, sims: Sims) -> None:
    dwolla = DwollaClient(client_settings)
    try:
        await dwolla.get_customer(JANE_DWOLLA)
        assert dwolla.token_fetches == 1
        before = _unauthorized_count()
        async with httpx2.AsyncClient() as raw:
            (await raw.post(f"{sims.dwolla.url}/__sandbox/expire-tokens")).raise_for_status()
        # Several calls at once meet the expired token: exactly one renewal serves them all.
        results = await asyncio.gather(*(dwolla.get_customer(JANE_DWOLLA) for _ in range(5)))
        assert all(r.id == JANE_DWOLLA for r in results)
        assert dwolla.token_fetches == 2
        assert _unauthorized_count() - before >= 1
    finally:
        await dwolla.aclose()


async def test_dwolla_token_renewed_before_it_expires(client_settings: Settings, sims: Sims) -> None:
    sims.dwolla.knobs(token_ttl_seconds=61)  # renewal starts 60 s before expiry
    dwolla = DwollaClient(client_settings)
    try:
        await dwolla.get_customer(JANE_DWOLLA)
        before = _unauthorized_count()
        await asyncio.sleep(1.1)
        await dwolla.get_customer(JANE_DWOLLA)
        assert dwolla.token_fetches == 2
        assert _unauthorized_count() == before  # renewed in time: Dwolla never refused it
    finally:
        await dwolla.aclose()


async def test_dwolla_rejected_credentials_are_not_retried_forever(settings_factory, sims: Sims) -> None:
    dwolla = DwollaClient(settings_factory(**{**sims.settings(), "dwolla_secret": "wrong"}))
    try:
        with pytest.raises(UpstreamBadResponse) as info:
            await dwolla.get_customer(JANE_DWOLLA)
        assert info.value.status in (400, 401)
        assert "wrong" not in str(info.value)
    finally:
        await dwolla.aclose()


async def test_hubspot_429_then_success(client_settings: Settings, sims: Sims) -> None:
    sims.hubspot.knobs(force_429_next=2)
    hubspot = HubSpotClient(client_settings)
    try:
        started = time.monotonic()
        found = await hubspot.search_contacts(**terms_of("jane@acme.io"))
        assert [c.email for c in found] == ["jane@acme.io"]
        assert sims.hubspot.count("forced_429") == 2
        assert time.monotonic() - started < 2.5
    finally:
        await hubspot.aclose()


async def test_persistent_429_gives_up_within_the_budget(client_settings: Settings, sims: Sims) -> None:
    sims.dwolla.knobs(force_429_always=True)
    dwolla = DwollaClient(client_settings)
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamRateLimited):
            await dwolla.search_customers(**terms_of("jane"))
        assert time.monotonic() - started < 3
        assert sims.dwolla.count("forced_429") <= 3
    finally:
        await dwolla.aclose()


async def test_malformed_json_and_outage_map_to_upstream_errors(
    client_settings: Settings, sims: Sims
) -> None:
    sims.hubspot.knobs(malformed_always=True)
    sims.dwolla.knobs(error_rate=1.0, error_status=503)
    hubspot, dwolla = HubSpotClient(client_settings), DwollaClient(client_settings)
    try:
        with pytest.raises(UpstreamBadResponse) as bad:
            await hubspot.search_contacts(**terms_of("jane@acme.io"))
        assert bad.value.vendor == "hubspot"
        with pytest.raises(UpstreamUnavailable) as down:
            await dwolla.search_customers(**terms_of("jane"))
        assert down.value.vendor == "dwolla"
    finally:
        await hubspot.aclose()
        await dwolla.aclose()


async def test_search_limit_is_shared_by_replicas_through_redis(settings_factory, sims: Sims) -> None:
    settings = settings_factory(**sims.settings(), redis_url="redis://127.0.0.1:6379/0")
    replicas = [HubSpotClient(settings), HubSpotClient(settings)]  # two app processes' clients
    world = demo_world()
    people = [world.by_email[e] for e in ("jane@acme.io", "john.smith@acme.io", "maria@globex.com")]
    queries = [terms_of(f"{c.first_name} {c.last_name}") for c in people]  # names go through search
    started = time.monotonic()
    try:
        found = await asyncio.gather(*(r.search_contacts(**q) for r in replicas for q in queries * 2))
    finally:
        for r in replicas:
            await r.aclose()
    elapsed = time.monotonic() - started
    assert all(len(f) >= 1 for f in found)
    # Each replica alone paces at 4/s, so two unshared replicas would finish 12 searches in ~1.5 s;
    # sharing one Redis window of 4 per second takes at least 2 s.
    assert elapsed >= 2.0, elapsed
    stats = sims.hubspot.control.stats()
    assert stats["searches"] == 12 and stats["max_searches_per_second"] <= 5
    # Our stamps precede the vendor's by a round trip; on a loaded machine an odd 429 can still
    # happen at a window's edge, and is retried (all 12 answered above).
    assert sims.hubspot.count("rate_limited") <= 2
