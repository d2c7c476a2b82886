"""The customer's sessions list (union of index-driven parts) returns exactly the rows of its definition.

The definition, written as the plain outer-join query: a session is listed for e-mail E when a link
row for E exists that no agent unlinked and that reaches the threshold (or was linked by hand), or
when no link row for E exists and the site named E on the session (any letter case). Newest first,
ties broken by id, paged with the keyset cursor.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from supportlens.sessions import service
from supportlens.sessions.models import SessionCustomerMapping, UserSession

E = "jane@acme.io"
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def reference(db: Any, email: str, threshold: float) -> list[uuid.UUID]:
    m, s = SessionCustomerMapping, UserSession
    linked = and_(
        m.id.is_not(None),
        or_(m.manual_decision.is_(None), m.manual_decision != "unlink"),
        or_(m.confidence_score >= threshold, m.manual_decision == "link"),
    )
    named = and_(m.id.is_(None), func.lower(s.customer_email) == email)
    stmt = (
        select(s.id)
        .outerjoin(m, and_(m.session_id == s.id, m.customer_email == email))
        .where(or_(linked, named))
        .order_by(s.session_start.desc(), s.id.desc())
    )
    return list((await db.scalars(stmt)).all())


async def paged(db: Any, settings: Any, email: str, threshold: float, limit: int) -> list[uuid.UUID]:
    out: list[uuid.UUID] = []
    cursor = None
    for _ in range(200):
        items, cursor = await service.sessions_page(
            db, email, settings, limit=limit, before=cursor, min_confidence=threshold
        )
        out += [i.id for i in items]
        if cursor is None:
            return out
    raise AssertionError("the cursor never ended")


async def build_world(db: Any, seed: int) -> None:
    rng = random.Random(seed)
    emails = [E, "bob@acme.io", "eve@other.io"]
    sessions = []
    for i in range(90):
        # many ties on the start (same minute) to exercise the id tie-break across pages
        start = BASE - timedelta(minutes=rng.randrange(0, 40) * 7)
        named = rng.random()
        email = None
        if named < 0.45:
            email = rng.choice(emails)
            if rng.random() < 0.2:
                email = email.upper() if rng.random() < 0.5 else email.capitalize()
        sessions.append(
            UserSession(
                clarity_project_id="p",
                clarity_user_id=f"u{i % 17}",
                clarity_session_id=f"s{i}",
                customer_email=email,
                session_start=start,
                session_end=start + timedelta(minutes=5),
            )
        )
    db.add_all(sessions)
    await db.flush()
    for sess in sessions:
        for email in emails:
            r = rng.random()
            if r > 0.5:
                continue
            manual = None
            if r < 0.05:
                manual = "unlink"
            elif r < 0.1:
                manual = "link"
            db.add(
                SessionCustomerMapping(
                    session_id=sess.id,
                    customer_email=email,
                    confidence_score=rng.choice([1.0, 0.9, 0.6, 0.5, 0.45, 0.2]),
                    mapping_method="device_link",
                    evidence=[],
                    manual_decision=manual,
                )
            )
    await db.commit()


async def test_union_matches_definition_on_every_page(db, settings):
    await build_world(db, seed=11)
    # a session whose start moves earlier after it was linked (an earlier event arrives late)
    moved = (await db.scalars(select(UserSession).where(UserSession.clarity_session_id == "s3"))).one()
    await db.execute(
        update(UserSession).where(UserSession.id == moved.id).values(session_start=BASE - timedelta(days=3))
    )
    await db.commit()
    for email in (E, "bob@acme.io", "eve@other.io", "nobody@acme.io"):
        for threshold in (0.5, 0.7, 0.0, 1.0):
            expected = await reference(db, email, threshold)
            for limit in (1, 4, 10, 100):
                got = await paged(db, settings, email, threshold, limit)
                assert got == expected, (email, threshold, limit)


async def test_link_rows_carry_their_session_start(db):
    await build_world(db, seed=3)
    m, s = SessionCustomerMapping, UserSession
    first = (await db.scalars(select(s).where(s.clarity_session_id == "s0"))).one()
    await db.execute(
        update(s).where(s.id == first.id).values(session_start=BASE - timedelta(days=9, seconds=1))
    )
    await db.commit()
    rows = (await db.execute(select(m.session_start, s.session_start).join(s, s.id == m.session_id))).all()
    assert rows and all(a == b for a, b in rows)


async def test_a_write_cannot_put_a_wrong_start_on_a_link(db, settings):
    """The copy follows the session whatever a writer sets (the list's order depends on it)."""
    await build_world(db, seed=5)
    m, s = SessionCustomerMapping, UserSession
    expected = await reference(db, E, 0.5)
    await db.execute(update(m).where(m.customer_email == E).values(session_start=None))
    await db.execute(update(m).where(m.customer_email == "bob@acme.io").values(session_start=BASE))
    await db.commit()
    rows = (await db.execute(select(m.session_start, s.session_start).join(s, s.id == m.session_id))).all()
    assert rows and all(a == b for a, b in rows)
    for limit in (1, 3, 50):
        assert await paged(db, settings, E, 0.5, limit) == expected


async def test_possible_sessions_match_their_definition(db, settings):
    """Undecided links in [floor, threshold) of human sessions, newest first, never one of the list's."""
    await build_world(db, seed=13)
    m = SessionCustomerMapping
    in_band = select(m.session_id).where(
        m.customer_email == E,
        m.manual_decision.is_(None),
        m.confidence_score >= 0.2,
        m.confidence_score < 0.5,
    )
    bot = await db.get(UserSession, (await db.scalars(in_band.limit(1))).one())
    assert bot is not None
    bot.automated = "webdriver"  # automated traffic is never a customer's, not even possibly
    await db.commit()
    for email in (E, "bob@acme.io", "nobody@acme.io"):
        for floor, threshold in ((0.2, 0.5), (0.2, 0.7), (0.45, 0.5), (0.5, 0.5), (0.6, 0.5)):
            rows = (
                await db.execute(
                    select(UserSession, SessionCustomerMapping).join(
                        SessionCustomerMapping, SessionCustomerMapping.session_id == UserSession.id
                    )
                )
            ).all()
            expected = [
                s.id
                for s, link in sorted(rows, key=lambda r: (r[0].session_start, r[0].id), reverse=True)
                if link.customer_email == email
                and link.manual_decision is None
                and s.automated is None
                and floor <= link.confidence_score < threshold
            ]
            items, more = await service.possible_sessions(
                db, email, settings, floor=floor, threshold=threshold, limit=5
            )
            assert [i.id for i in items] == expected[:5] and more == (len(expected) > 5), (email, floor)
            every, more = await service.possible_sessions(
                db, email, settings, floor=floor, threshold=threshold, limit=100
            )
            assert [i.id for i in every] == expected and not more, (email, floor)
            listed = set(await reference(db, email, threshold))
            assert not listed & {i.id for i in items}
            if (email, floor, threshold) == (E, 0.2, 0.5):
                assert len(expected) > 5 and bot.id not in expected  # the page is full; the bot is left out
