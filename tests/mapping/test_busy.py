"""A browser or an address seen in more sessions than people make (a kiosk, an uptime monitor, a bot
re-using one Clarity userId or one IP) carries no evidence, and its history is no longer read or
re-scored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supportlens.mapping import evidence, facts
from supportlens.mapping.models import MappingBusyBrowser, MappingBusyIp
from tests.mapping.helpers import Batch, link_of, links, send

JANE = "jane@acme.io"
JOHN = "john@acme.io"
CAP = 4


@pytest.fixture(autouse=True)
def small_caps(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_BROWSER_SESSIONS", CAP)
    monkeypatch.setattr(evidence, "MAX_IP_SESSIONS", CAP)


def _carrier(n: int) -> str:
    return f"100.64.0.{n}"  # a different address each time: no network evidence


async def test_a_browser_past_the_cap_loses_its_device_evidence_once(db, monkeypatch, scored):
    await send(db, Batch("kiosk", "s0", 0, 5, ip=_carrier(0), email=JANE))
    for n in range(1, CAP):
        await send(db, Batch("kiosk", f"s{n}", 90 * n, 5, ip=_carrier(n)))
    assert {sid for (_, sid, email) in await links(db) if email == JANE} == {"s0", "s1", "s2", "s3"}
    assert (await link_of(db, "kiosk", "s1"))[JANE].mapping_method == "device_link"
    scored.clear()
    # The session that passes the cap: every anonymous session of the browser is re-scored, once.
    await send(db, Batch("kiosk", f"s{CAP}", 90 * CAP, 5, ip=_carrier(CAP)))
    assert sorted(scored) == ["s1", "s2", "s3", "s4"]
    assert await links(db) == {("kiosk", "s0", JANE): (1.0, "email_match")}
    assert (await db.scalars(select(MappingBusyBrowser.clarity_user_id))).all() == ["kiosk"]

    # From then on a sign-in re-scores nothing else, and an anonymous visit reads no history.
    scored.clear()
    await send(db, Batch("kiosk", "s5", 90 * 5, 5, ip=_carrier(5), email=JOHN))
    assert scored == ["s5"]
    read: list[str] = []
    for name in ("device_sightings", "browser_visits"):
        original_read = getattr(facts, name)

        async def reading(db_, ctx, device, _orig=original_read):
            read.append(device)
            return await _orig(db_, ctx, device)

        monkeypatch.setattr(facts, name, reading)
    scored.clear()
    await send(db, Batch("kiosk", "s6", 90 * 6, 5, ip=_carrier(6)))
    assert scored == ["s6"] and read == []
    assert set(await links(db)) == {("kiosk", "s0", JANE), ("kiosk", "s5", JOHN)}


async def test_a_busy_browsers_visit_still_weighs_its_network(db):
    home = "81.2.3.4"
    for n in range(CAP + 1):
        await send(db, Batch("monitor", f"m{n}", 60 * 24 * n, 1, ip=_carrier(n)))
    await send(db, Batch("laptop", "signin", 60 * 24 * 9, 10, ip=home, email=JANE))
    await send(db, Batch("monitor", "at-home", 60 * 24 * 9 + 14, 5, ip=home))
    row = (await link_of(db, "monitor", "at-home"))[JANE]
    assert row.mapping_method == "time_proximity"
    assert [item["method"] for item in row.evidence] == ["time_proximity"]


async def test_re_sending_a_busy_browsers_batches_changes_nothing(db):
    sent = [
        Batch("kiosk", f"s{n}", 90 * n, 5, ip="81.2.3.4", email=None if n % 3 else JANE) for n in range(8)
    ]
    for b in sent:
        await send(db, b)
    first = await links(db, with_evidence=True)
    for b in reversed(sent):
        await send(db, b)
    assert await links(db, with_evidence=True) == first


async def test_an_address_past_the_cap_loses_its_network_evidence_once(db, scored):
    home = "81.2.3.4"
    await send(db, Batch("laptop", "signin", 0, 10, ip=home, email=JANE))
    for n in range(1, CAP):
        await send(db, Batch(f"tablet{n}", f"t{n}", 60 * 24 * n, 5, ip=home))
    assert (await link_of(db, "tablet1", "t1"))[JANE].mapping_method == "ip_match"
    scored.clear()
    # The session that passes the cap: the address's anonymous sessions are re-scored, once.
    await send(db, Batch(f"tablet{CAP}", f"t{CAP}", 60 * 24 * CAP, 5, ip=home))
    assert sorted(scored) == ["t1", "t2", "t3", "t4"]
    assert await links(db) == {("laptop", "signin", JANE): (1.0, "email_match")}
    assert len((await db.scalars(select(MappingBusyIp.ip_key))).all()) == 1

    # From then on a sign-in there re-scores only sessions minutes from it.
    scored.clear()
    await send(db, Batch("laptop", "again", 60 * 24 * 9, 10, ip=home, email=JOHN))
    assert scored == ["again"]
    await send(db, Batch("tablet1", "late", 60 * 24 * 9 + 20, 5, ip=home))
    # A busy address says nothing about who is behind it, minutes apart or not; the tablet's
    # earlier visit is no evidence either, as it was at this same address.
    assert await link_of(db, "tablet1", "late") == {}
