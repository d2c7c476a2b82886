"""Each evidence method, retroactive claiming, shared browsers and crowded addresses."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import supportlens.mapping.engine as engine
from supportlens.mapping import decisions, evidence
from supportlens.mapping.evidence import MAX_IP_CUSTOMERS
from supportlens.mapping.models import MappingBusyBrowser, MappingBusyIp
from supportlens.sessions.models import UserSession
from tests.mapping.helpers import Batch, link_of, links, send, send_at
from tests.support.keys import TEST_FACT_KEYS

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


async def test_a_shop_computer_one_customer_signed_in_on_gives_no_default_link(db):
    # Jane signs in once on a shop's computer; 39 visits by other people follow, hours apart. The first
    # seven were scored while the browser looked like her own (2 to 8 sessions): when its count passes
    # 8 sessions per sign-in they are scored again, so none stays listed by default.
    shop = "81.9.9.9"
    await send(db, Batch("shop", "signin", 0, 10, ip=shop, email=JANE))
    for n in range(1, 40):
        await send(db, Batch("shop", f"visit{n}", 180 * n, 10, ip=shop))
        if n == 7:
            assert (await link_of(db, "shop", "visit1"))[JANE].confidence_score >= 0.9
    for n in range(1, 40):
        row = (await link_of(db, "shop", f"visit{n}")).get(JANE)
        assert row is None or row.confidence_score < 0.5
    # On a browser that is hers (a few sessions), the same sign-in links by default.
    await send(db, Batch("laptop", "signin", 0, 10, ip="10.1.1.1", email=JANE))
    await send(db, Batch("laptop", "visit", 180, 10, ip="10.1.1.1"))
    assert (await link_of(db, "laptop", "visit"))[JANE].confidence_score >= 0.9


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


async def test_browser_networks_tell_household_members_apart(db):
    # Jane and John share a home address; Jane also signs in at her office. A tablet nobody ever
    # signed in on visits from home and from that office: it is more likely Jane's than John's.
    home, office = "81.2.3.4", "62.1.1.1"
    await send(db, Batch("jane-laptop", "h1", 0, 10, ip=home, email=JANE))
    await send(db, Batch("john-laptop", "h2", 200, 10, ip=home, email=JOHN))
    await send(db, Batch("tablet", "at-home", 3 * 24 * 60, 10, ip=home))
    before = {e: r.confidence_score for e, r in (await link_of(db, "tablet", "at-home")).items()}
    assert abs(before[JANE] - before[JOHN]) < 1e-6
    # The office sign-in and the tablet's office visit come later; the home visit is claimed retroactively.
    await send(db, Batch("jane-laptop", "o1", 24 * 60, 10, ip=office, email=JANE))
    await send(db, Batch("tablet", "at-office", 4 * 24 * 60, 10, ip=office))
    after = await link_of(db, "tablet", "at-home")
    assert after[JANE].confidence_score > before[JANE]
    assert after[JANE].confidence_score > after[JOHN].confidence_score
    assert after[JOHN].confidence_score < before[JOHN]
    reasons = [e["reason"] for e in after[JANE].evidence if e["method"] == "ip_match"]
    assert (
        reasons
        and "this browser also visited from 1 other network where this customer signed in" in (reasons[0])
    )
    assert not any("other network" in str(e["reason"]) for e in after[JOHN].evidence)


async def test_browser_visit_minutes_from_a_sign_in_elsewhere(db):
    # The phone was on the office Wi-Fi minutes after Jane signed in there; its visit from a carrier
    # address (no evidence of its own) is linked through that other visit.
    office = "62.1.1.1"
    await send(db, Batch("jane-laptop", "o1", 0, 10, ip=office, email=JANE))
    await send(db, Batch("phone", "on-carrier", 2 * 24 * 60, 10, ip=None))
    assert await link_of(db, "phone", "on-carrier") == {}
    await send(db, Batch("phone", "at-office", 15, 5, ip=office))
    row = (await link_of(db, "phone", "on-carrier"))[JANE]
    assert row.mapping_method == "ip_match"
    assert "1 other visit of this browser came minutes from this customer's sign-in" in str(
        row.evidence[0]["reason"]
    )
    # A crowded office carries no evidence, for this session's address or for the browser's others.
    for i in range(MAX_IP_CUSTOMERS):
        await send(db, Batch(f"w{i}", "s", 600 + i, 10, ip=office, email=f"w{i}@x.io"))
    assert await link_of(db, "phone", "on-carrier") == {}


@pytest.mark.parametrize(
    ("browser_cap", "ip_cap"),
    [(evidence.MAX_BROWSER_SESSIONS, evidence.MAX_IP_SESSIONS), (5, evidence.MAX_IP_SESSIONS), (500, 8)],
)
async def test_engine_matches_the_offline_scorer(db, monkeypatch, browser_cap, ip_cap):
    # The benchmark fits and checks the scorer on facts built from the world in memory; the engine
    # must compute the very same facts from the database, batch by batch. (A small world has few
    # busy networks: a low cap makes the busy-network rule matter here too; low session caps make
    # some browsers and addresses pass them part-way through.)
    monkeypatch.setattr(evidence, "BROWSER_MAX_IP_DEVICES", 2)
    monkeypatch.setattr(evidence, "MAX_BROWSER_SESSIONS", browser_cap)
    monkeypatch.setattr(evidence, "MAX_IP_SESSIONS", ip_cap)
    from bench.mapping import offline_links

    from supportlens_sandbox.mapping_world import build_world

    world = build_world(11, 25)
    for ws in world.sessions:
        for batch in range(ws.batches):
            email = ws.truth if ws.login_batch is not None and batch >= ws.login_batch else None
            await send_at(db, ws.device, ws.session, ws.start, ws.end, ip=ws.ip, email=email)
    expected = {(ln.session, ln.email): (round(ln.confidence, 4), ln.method) for ln in offline_links(world)}
    got = {(session, email): value for (_, session, email), value in (await links(db)).items()}
    assert len(expected) > 50
    assert got == expected
    busy_browsers = await db.scalar(select(func.count()).select_from(MappingBusyBrowser))
    busy_ips = await db.scalar(select(func.count()).select_from(MappingBusyIp))
    assert (busy_browsers > 0, busy_ips > 0) == (browser_cap == 5, ip_cap == 8)


async def test_a_sign_in_that_grows_near_a_visit_reaches_the_browsers_other_sessions(db):
    home = "81.2.3.4"
    await send(db, Batch("tablet", "early", 0, 10, ip=home))
    await send(db, Batch("tablet", "later", 200, 10, ip=home))
    await send(db, Batch("laptop", "signin", 100, 10, ip=home, email=JANE))  # 90 minutes before "later"
    assert "other visit" not in str((await link_of(db, "tablet", "early"))[JANE].evidence)
    # The signed-in session goes on: it now ends 50 minutes before the tablet's later visit.
    await send(db, Batch("laptop", "signin", 140, 10, ip=home, email=JANE))
    early = (await link_of(db, "tablet", "early"))[JANE]
    assert "1 other visit of this browser came minutes from this customer's sign-in" in str(early.evidence)


async def test_a_busy_browser_is_summarised_once_per_batch(db, monkeypatch):
    # A sign-in re-scores every session of its browser; each of them must read the browser's history
    # from one shared summary, or a browser with n sessions costs n * n per batch.
    for n in range(30):
        await send(db, Batch("kiosk", f"s{n}", 90 * n, 5, ip="81.2.3.4", email=JANE if n % 3 == 0 else None))
    built = []
    original = evidence._BrowserSummary.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(evidence._BrowserSummary, "__init__", counting)
    await send(db, Batch("kiosk", "s30", 90 * 30, 5, ip="81.2.3.4", email=JANE))
    rows = await links(db)
    assert sum(1 for (_, _, email) in rows if email == JANE) == 31
    assert 1 <= len(built) <= 2  # the batch's own session, then the re-score of the other 30


async def test_a_sign_in_re_scores_only_the_browsers_anonymous_sessions(db, scored):
    # A signed-in session links by its e-mail whatever its neighbours say: re-scoring it on every
    # sign-in of its browser would make a customer's own laptop cost more with every visit.
    for n in range(10):
        await send(db, Batch("laptop", f"s{n}", 90 * n, 5, ip="81.2.3.4", email=JANE if n % 2 else None))
    before = (await links(db))[("laptop", "s0", JANE)][0]
    scored.clear()
    await send(db, Batch("laptop", "s10", 90 * 10, 5, ip="81.2.3.4", email=JOHN))
    assert sorted(scored) == sorted(["s10", "s0", "s2", "s4", "s6", "s8"])
    rows = await links(db)
    assert {(sid, email) for (_, sid, email) in rows if sid in ("s1", "s3")} == {("s1", JANE), ("s3", JANE)}
    assert rows[("laptop", "s1", JANE)] == (1.0, "email_match")
    # The anonymous ones now weigh two customers on one browser.
    assert rows[("laptop", "s0", JANE)][0] < before


async def test_a_manual_decision_waits_for_the_mapping_job_in_flight(db, sessionmaker):
    # The mapping worker runs one job at a time; an agent's link is the other writer of links, so it
    # takes the same mutex and cannot interleave with a job's re-score.
    import asyncio

    s = await send(db, Batch("laptop", "home-1", 0, 10, ip="81.2.3.4"))
    async with sessionmaker() as job, sessionmaker() as agent_db:
        await engine.mapping_mutex(job)
        session = await agent_db.get(UserSession, s.id)
        assert session is not None
        task = asyncio.create_task(
            decisions.set_manual(
                agent_db,
                session=session,
                email=JANE,
                decision="link",
                agent=None,
                reason=None,
                keys=TEST_FACT_KEYS,
            )
        )
        try:
            await asyncio.sleep(0.3)
            assert not task.done()
        finally:
            await job.rollback()
            row = await asyncio.wait_for(task, timeout=10)
        assert row.manual_decision == "link"
        await agent_db.commit()
    assert set(await link_of(db, "laptop", "home-1")) == {JANE}
