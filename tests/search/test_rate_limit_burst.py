"""A burst of 50 searches stays within HubSpot's 5 searches per second, measured at the simulator;
an exact e-mail is a read by the unique `email` property and spends none of them."""

from __future__ import annotations

import asyncio

from supportlens.customers.query import VendorTerms, parse_query
from supportlens.integrations.hubspot.client import HubSpotClient, policy_from_settings
from supportlens_sandbox.world import demo_world
from tests.integrations.sims import Sims


def terms_of(typed: str) -> VendorTerms:
    """What the search box hands a vendor client for `typed`."""
    return parse_query(typed).terms


async def test_burst_of_50_searches_respects_5_per_second(settings_factory, sims: Sims) -> None:
    settings = settings_factory(**sims.settings())
    policy = policy_from_settings(settings)
    policy.limit_wait_seconds = 30  # the whole burst queues behind the limiter instead of giving up
    hubspot = HubSpotClient(settings, policy=policy)
    customers = demo_world().hubspot_customers[:50]
    assert len(customers) == 50
    try:
        found = await asyncio.gather(
            *(hubspot.search_contacts(**terms_of(f"{c.first_name} {c.last_name}")) for c in customers)
        )
    finally:
        await hubspot.aclose()
    assert all(c.email.lower() in [f.email for f in hits] for c, hits in zip(customers, found, strict=True))
    stats = sims.hubspot.control.stats()
    assert stats["searches"] == 50
    assert stats["max_searches_per_second"] <= 5  # the simulator's own sliding 1-second window
    assert sims.hubspot.count("rate_limited") == 0  # and HubSpot never had to say 429


async def test_email_lookups_read_the_contact_once_and_spend_no_search(settings_factory, sims: Sims) -> None:
    hubspot = HubSpotClient(settings_factory(**sims.settings()))
    customers = demo_world().hubspot_customers[:20]
    try:
        found = await asyncio.gather(
            *(hubspot.search_contacts(**terms_of(c.email.upper())) for c in customers)
        )
        assert [[f.email for f in hits] for hits in found] == [[c.email.lower()] for c in customers]
        await hubspot.owner_names()  # the owners list is read once per ten minutes, not per bundle
        before = sims.hubspot.count("requests")
        bundle = await hubspot.get_contact_bundle(found[0][0].id)
        reads = sims.hubspot.count("requests") - before
        assert await hubspot.search_contacts(**terms_of("nobody.here@example.org")) == []
    finally:
        await hubspot.aclose()
    assert sims.hubspot.control.stats()["searches"] == 0
    # the bundle reuses the contact (and its associations) just read by e-mail: only batch reads follow
    assert bundle.contact.email == customers[0].email.lower()
    assert reads == sum(1 for kind in (bundle.companies, bundle.deals, bundle.tickets) if kind)
