"""Each evidence method, retroactive claiming, shared browsers and crowded addresses."""

from __future__ import annotations

from supportlens.mapping.evidence import MAX_IP_CUSTOMERS
from tests.mapping.helpers import Batch, link_of, links, send

JANE = "jane@acme.io"
JOHN = "john@acme.io"


async def test_email_match_is_certain(db):
    await send(db, Batch("dev1", "s1", 0, 10, ip="10.0.0.1", email="Jane@Acme.io"))
    rows = await link_of(db, "dev1", "s1")
    assert set(rows) == {JANE}
    row = rows[JANE]
    assert row.confidence_score == 1.0
    assert row.mapping_method == "email_match"
    assert row.evidence == [
        {"method": "email_match", "score": 1.0, "reason": "signed in as this customer on this session"}
    ]


async def test_device_link_after_login(db):
    await send(db, Batch("dev1", "s1", 0, 10, ip="10.0.0.1", email=JANE))
    await send(db, Batch("dev1", "s2", 3 * 24 * 60, 10, ip="172.16.0.9"))
    row = (await link_of(db, "dev1", "s2"))[JANE]
    assert row.mapping_method == "device_link"
    assert 0.8 <= row.confidence_score < 1.0
    assert row.evidence[0]["method"] == "device_link"
    assert "same browser as the signed-in session of 2 Nov" in row.evidence[0]["reason"]


async def test_retroactive_claim_when_login_comes_later(db):
    await send(db, Batch("dev1", "early1", 0, 5, ip="10.0.0.1"))
    await send(db, Batch("dev1", "early2", 24 * 60, 5, ip="10.0.0.2"))
    assert await links(db) == {}
    await send(db, Batch("dev1", "login", 2 * 24 * 60, 5, ip="10.0.0.3", email=JANE))
    for session in ("early1", "early2"):
        row = (await link_of(db, "dev1", session))[JANE]
        assert row.mapping_method == "device_link"
        assert row.confidence_score >= 0.8
        assert "visited before signing in there" in row.evidence[0]["reason"]


async def test_shared_device_never_links_both_high(db):
    for i in range(3):
        await send(db, Batch("family", f"j{i}", i * 24 * 60, 10, ip="10.0.0.1", email=JANE))
        await send(db, Batch("family", f"o{i}", i * 24 * 60 + 300, 10, ip="10.0.0.1", email=JOHN))
    await send(db, Batch("family", "anon", 4 * 24 * 60, 10, ip="10.0.0.1"))
    rows = await link_of(db, "family", "anon")
    assert set(rows) == {JANE, JOHN}
    assert sum(r.confidence_score for r in rows.values()) <= 1.0
    assert all(r.confidence_score < 0.6 for r in rows.values()), {
        e: r.confidence_score for e, r in rows.items()
    }
    for r in rows.values():
        device = next(e for e in r.evidence if e["method"] == "device_link")
        assert "signed in as 2 different customers" in device["reason"]
    # A browser only Jane used scores higher than the shared one.
    await send(db, Batch("solo", "login", 0, 10, ip="10.0.0.9", email=JANE))
    await send(db, Batch("solo", "anon", 4 * 24 * 60, 10, ip="10.0.0.9"))
    solo = (await link_of(db, "solo", "anon"))[JANE]
    assert solo.confidence_score > rows[JANE].confidence_score + 0.2


async def test_ip_time_proximity_and_gap(db):
    # A phone on the home Wi-Fi minutes after the customer signed in on the laptop.
    await send(db, Batch("laptop", "s1", 0, 10, ip="81.2.3.4", email=JANE))
    await send(db, Batch("phone", "near", 14, 5, ip="81.2.3.4"))
    await send(db, Batch("tablet", "later", 60, 5, ip="81.2.3.4"))
    near = (await link_of(db, "phone", "near"))[JANE]
    assert near.mapping_method == "time_proximity"
    assert near.evidence[0]["reason"] == "same IP 4 minutes after sign-in; 1 customer uses this IP"
    later = (await link_of(db, "tablet", "later"))[JANE]
    assert later.confidence_score < near.confidence_score


async def test_ip_match_without_proximity(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip="81.2.3.4", email=JANE))
    await send(db, Batch("laptop", "s2", 24 * 60, 10, ip="81.2.3.4", email=JANE))
    await send(db, Batch("phone", "p1", 3 * 24 * 60, 5, ip="81.2.3.4"))
    row = (await link_of(db, "phone", "p1"))[JANE]
    assert row.mapping_method == "ip_match"
    assert (
        row.evidence[0]["reason"]
        == "same IP as 2 signed-in sessions of this customer; 1 customer uses this IP"
    )


async def test_crowded_ip_scores_lower_and_saturates(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip="81.2.3.4", email=JANE))
    await send(db, Batch("phone", "near", 12, 5, ip="81.2.3.4"))
    alone = (await link_of(db, "phone", "near"))[JANE].confidence_score
    # Two more customers sign in behind the same address: the earlier link weakens.
    await send(db, Batch("b", "s", 600, 10, ip="81.2.3.4", email="b@x.io"))
    await send(db, Batch("c", "s", 700, 10, ip="81.2.3.4", email="c@x.io"))
    shared = await link_of(db, "phone", "near")
    assert shared[JANE].confidence_score < alone
    assert "3 customers share this IP" in shared[JANE].evidence[0]["reason"]
    # An office or carrier address: past the cap it carries no evidence at all.
    for i in range(MAX_IP_CUSTOMERS):
        await send(db, Batch(f"o{i}", "s", 800 + i, 10, ip="81.2.3.4", email=f"o{i}@x.io"))
    assert await link_of(db, "phone", "near") == {}
