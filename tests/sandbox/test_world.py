"""The demo world: deterministic, large enough, the documented headline customers, a realistic mix."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import phonenumbers

from supportlens_sandbox.world import ANCHOR, HEADLINE_EMAILS, demo_world


def test_same_seed_same_world_other_seed_other_people() -> None:
    a, b = demo_world(7), demo_world(7, size=240)
    assert [(c.email, c.dwolla_id, c.hubspot_contact_id, c.phone) for c in a.customers] == [
        (c.email, c.dwolla_id, c.hubspot_contact_id, c.phone) for c in b.customers
    ]
    other = demo_world(8)
    assert [c.email for c in other.customers[: len(HEADLINE_EMAILS)]] == list(HEADLINE_EMAILS)
    assert [c.email for c in other.customers[20:40]] != [c.email for c in a.customers[20:40]]


def test_now_moves_dates_only() -> None:
    fixed = demo_world()
    later = demo_world(now=ANCHOR + timedelta(days=30))
    assert fixed.now == ANCHOR
    assert [c.dwolla_id for c in fixed.customers] == [c.dwolla_id for c in later.customers]
    assert [t.id for t in fixed.transfers.values()] == [t.id for t in later.transfers.values()]
    pairs = zip(fixed.transfers.values(), later.transfers.values(), strict=True)
    assert all(b.created - a.created == timedelta(days=30) for a, b in pairs)


def test_headline_customers_come_first_as_documented() -> None:
    world = demo_world()
    assert [c.email for c in world.customers[:10]] == list(HEADLINE_EMAILS)
    jane = world.customer("jane@acme.io")
    assert (jane.name, jane.company, jane.phone, jane.phone_display) == (
        "Jane Doe", "Acme Inc", "+14155550101", "(415) 555-0101",
    )  # fmt: skip
    assert jane.dwolla_status == "verified" and jane.hubspot_dwolla_id == jane.dwolla_id
    newest = jane.transfers[0]
    assert (newest.status, newest.failure_code, newest.amount_value) == ("failed", "R01", "225.00")
    assert newest.failure_description == "Insufficient Funds"
    assert jane.ticket_ids and jane.hubspot_company_id == "9700000101"
    acme = world.companies_by_id["9700000101"]
    john = world.customer("john.smith@acme.io")
    assert acme.dwolla_id == john.dwolla_id and john.dwolla_type == "business"
    assert set(acme.contact_ids) == {jane.hubspot_contact_id, john.hubspot_contact_id} and acme.deal_ids
    maria = world.customer("maria@globex.com")
    assert maria.dwolla_email == "maria.garcia@globex.com" and maria.inconsistencies == ["email_differs"]
    robert = world.customer("robert@initech.com")
    assert robert.dwolla_first_name == "Bob" and robert.inconsistencies == ["name_differs"]
    assert [t.failure_code for t in robert.failed_transfers] == ["R03"]
    assert any(fs.removed for fs in robert.funding_sources)
    priya = world.customer("priya@umbrella.health")
    assert priya.dwolla_status == "suspended" and priya.hubspot_dwolla_id is None
    assert priya.inconsistencies == ["missing_dwolla_id"]
    assert world.customer("olivia@hooli.dev").dwolla_id is None
    lucas = world.customer("lucas@piedpiper.io")
    assert lucas.hubspot_contact_id is None and lucas.dwolla_status == "unverified"
    assert world.customer("emma@starkindustries.co").dwolla_status == "document"
    noah = world.customer("noah@wayneenterprises.co")
    assert noah.dwolla_status == "retry" and noah.failed_transfers[0].failure_code == "R02"
    assert world.customer("sophia@umbrella.health").dwolla_status == "deactivated"


def test_population_mix() -> None:
    world = demo_world()
    assert len(world.customers) >= 200
    assert len({c.email.lower() for c in world.customers}) == len(world.customers)
    assert len({c.phone for c in world.customers}) == len(world.customers)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(c.phone)) for c in world.customers)
    sizes = Counter(len(c.contact_ids) for c in world.companies)
    assert sum(n for size, n in sizes.items() if size >= 3) >= 10
    statuses = Counter(c.dwolla_status for c in world.dwolla_customers)
    for status in ("verified", "unverified", "suspended", "retry", "document", "deactivated"):
        assert statuses[status] >= 2, status
    problems = Counter(p for c in world.customers for p in c.inconsistencies)
    for kind in ("email_differs", "name_differs", "missing_dwolla_id", "dwolla_only", "hubspot_only"):
        assert problems[kind] >= 4, kind
    with_id = sum(1 for c in world.hubspot_customers if c.hubspot_dwolla_id)
    assert 0.5 < with_id / len(world.hubspot_customers) < 0.95
    transfers = list(world.transfers.values())
    assert Counter(t.status for t in transfers).keys() == {"pending", "processed", "failed", "cancelled"}
    assert all(world.now - timedelta(days=91) <= t.created <= world.now for t in transfers)
    assert all((t.status == "failed") == (t.failure_code is not None) for t in transfers)
    assert {"R01", "R03"} <= {t.failure_code for t in transfers}
    assert all(
        c.transfers == sorted(c.transfers, key=lambda t: t.created, reverse=True) for c in world.customers
    )
    verified_balances = [
        fs for c in world.dwolla_customers if c.dwolla_status == "verified" for fs in c.funding_sources
        if fs.type == "balance"
    ]  # fmt: skip
    assert verified_balances and all(fs.balance is not None for fs in verified_balances)
    assert any(fs.removed for fs in world.funding_sources.values())
    assert world.deals and world.tickets
    assert all(c.created.tzinfo == UTC or c.created.utcoffset() == timedelta(0) for c in world.customers)
    assert datetime(2026, 1, 1, tzinfo=UTC) < world.now
