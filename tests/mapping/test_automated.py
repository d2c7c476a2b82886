"""Automated traffic is never a customer: it neither gives nor receives evidence, even when it signs in;
a session no person has acted on yet gives and receives none until one does; the rate rule flags a
burst of new sessions, the earlier ones of the minute too."""

from __future__ import annotations

from sqlalchemy import select

from supportlens.mapping.models import MappingIdentity
from supportlens.sessions import automation
from supportlens.sessions.models import UserSession
from tests.mapping.helpers import Batch, link_of, send

JANE = "jane@acme.io"
HOME = "81.2.3.4"


async def test_the_demos_curl_loop_links_to_nobody(db):
    """Jane signs in at home; then a script sends empty sessions from the same address minutes later."""
    await send(db, Batch("laptop", "s1", 0, 10, ip=HOME, email=JANE))
    for i in range(5):
        await send(db, Batch(f"curl{i}", f"c{i}", 12 + i, 0, ip=HOME, automated="script"))
    for i in range(5):
        assert await link_of(db, f"curl{i}", f"c{i}") == {}
    # The same visit from a person's phone is linked by the same evidence.
    await send(db, Batch("phone", "p1", 14, 5, ip=HOME))
    assert JANE in await link_of(db, "phone", "p1")


async def test_an_automated_sign_in_gives_no_evidence_and_is_not_listed(db):
    # The merchant's end-to-end test signs in as Jane with a webdriver browser...
    await send(db, Batch("robot", "r1", 0, 10, ip=HOME, email=JANE, automated="webdriver"))
    assert await link_of(db, "robot", "r1") == {}
    assert (await db.scalars(select(MappingIdentity))).first() is None
    # ... so neither that browser's nor that address's other sessions are Jane's.
    await send(db, Batch("robot", "r2", 60, 10, ip="10.1.1.1"))
    await send(db, Batch("phone", "p1", 5, 5, ip=HOME))
    assert await link_of(db, "robot", "r2") == {}
    assert await link_of(db, "phone", "p1") == {}


async def test_no_interaction_yet_means_no_evidence_until_a_person_acts(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip=HOME, email=JANE))
    await send(db, Batch("phone", "p1", 14, 1, ip=HOME, human=False))
    assert await link_of(db, "phone", "p1") == {}
    await send(db, Batch("phone", "p1", 14, 3, ip=HOME, human=True))
    assert (await link_of(db, "phone", "p1"))[JANE].mapping_method == "time_proximity"


async def test_a_signed_in_session_without_interaction_links_by_its_sign_in_only(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip=HOME, email=JANE, human=False))
    row = (await link_of(db, "laptop", "s1"))[JANE]
    assert (row.mapping_method, row.confidence_score) == ("email_match", 1.0)
    # It gave no evidence: another browser at the address minutes later is not linked by it.
    await send(db, Batch("phone", "p1", 12, 5, ip=HOME))
    assert await link_of(db, "phone", "p1") == {}


async def test_the_rate_rule_flags_a_burst_from_one_address_and_its_start(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip=HOME, email=JANE))
    # A scraper with a browser's User-Agent: a new session (a new browser id) every two seconds.
    limit = automation.RATE_LIMIT
    for i in range(limit + 3):
        await send(db, Batch(f"b{i}", f"x{i}", 11, 0, ip=HOME))
    db.expire_all()
    flagged = (await db.scalars(select(UserSession).where(UserSession.automated == "rate"))).all()
    assert {s.clarity_session_id for s in flagged} == {f"x{i}" for i in range(limit + 3)}
    for i in range(limit + 3):
        assert await link_of(db, f"b{i}", f"x{i}") == {}, f"x{i} is still linked"
    # Jane's own session is not part of the burst.
    assert (await link_of(db, "laptop", "s1"))[JANE].confidence_score == 1.0


async def test_a_household_is_not_a_burst(db):
    await send(db, Batch("laptop", "s1", 0, 10, ip=HOME, email=JANE))
    for i in range(6):  # six tabs and devices in a minute
        await send(db, Batch(f"d{i}", f"t{i}", 11, 1, ip=HOME))
    flagged = (await db.scalars(select(UserSession).where(UserSession.automated.is_not(None)))).all()
    assert flagged == []
    assert JANE in await link_of(db, "d0", "t0")
