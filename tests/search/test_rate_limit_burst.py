"""A burst of 50 searches stays within HubSpot's 5 searches per second, measured at the simulator."""

from __future__ import annotations

import asyncio

from supportlens.integrations.hubspot.client import HubSpotClient, policy_from_settings
from supportlens.sandbox.world import demo_world
from supportlens.search.query import parse_query
from tests.integrations.sims import Sims


async def test_burst_of_50_searches_respects_5_per_second(settings_factory, sims: Sims) -> None:
    settings = settings_factory(**sims.settings())
    policy = policy_from_settings(settings)
    policy.limit_wait_seconds = 30  # the whole burst queues behind the limiter instead of giving up
    hubspot = HubSpotClient(settings, policy=policy)
    emails = [c.email for c in demo_world().hubspot_customers[:50]]
    assert len(emails) == 50
    try:
        found = await asyncio.gather(*(hubspot.search_contacts(parse_query(e)) for e in emails))
    finally:
        await hubspot.aclose()
    assert [[c.email for c in f] for f in found] == [[e.lower()] for e in emails]
    stats = sims.hubspot.control.stats()
    assert stats["searches"] == 50
    assert stats["max_searches_per_second"] <= 5  # the simulator's own sliding 1-second window
    assert sims.hubspot.count("rate_limited") == 0  # and HubSpot never had to say 429
