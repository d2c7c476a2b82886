"""The story's read of a session's events (story_reads.story_events) against PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from supportlens.investigation import story_reads
from supportlens.investigation.story import StoryEvent, build_story
from supportlens.sessions.models import SessionEvent, UserSession
from tests.investigation.seed import SHOP, seed_big_session

START = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
Row = tuple[float, str, str | None, str | None, dict]  # seconds, type, URL, selector, data


async def _session_with(sessionmaker, rows: list[Row]) -> UserSession:
    sid = uuid.uuid4()
    s = UserSession(
        id=sid,
        clarity_project_id="proj1",
        clarity_user_id="u1",
        clarity_session_id=f"s{sid.hex[:8]}",
        session_start=START,
        session_end=START + timedelta(minutes=10),
        duration_seconds=600,
        event_count=len(rows),
    )
    async with sessionmaker() as db:
        db.add(s)
        await db.flush()
        for sec, etype, url, selector, data in rows:
            db.add(
                SessionEvent(
                    id=uuid.uuid4(),
                    session_id=sid,
                    event_type=etype,
                    timestamp=START + timedelta(seconds=sec),
                    page_url=url,
                    element_selector=selector,
                    event_data=data,
                )
            )
        await db.commit()
    return s


async def test_each_event_type_reads_the_fields_its_step_uses(sessionmaker, db):
    pay = f"{SHOP}/pay"
    s = await _session_with(
        sessionmaker,
        [
            (0, "navigation", pay, None, {"title": "Pay", "text": "not read"}),
            (1.5, "click", pay, "#pay", {"text": "Pay now", "message": "not read"}),
            (2, "error", pay, "#ignored", {"message": "", "text": "TypeError: x is undefined"}),
            (3, "error", pay, None, {}),
            (4, "scroll", pay, None, {"depth": "80.5"}),
            (5, "scroll", pay, None, {"maxDepth": 250}),
            (6, "scroll", pay, None, {"depth": "inf"}),  # a tracker's text, not a depth: no 500
            (7, "scroll", pay, None, {"percent": "nan"}),
            (8, "custom", pay, None, {"event": "signup"}),
            (9, "form_submit", pay, "form#card", {"title": "not read"}),
        ],
    )
    events = await story_reads.story_events(db, s)
    assert events == [
        StoryEvent(0, "navigation", pay, title="Pay"),
        StoryEvent(1500, "click", pay, sel="#pay", text="Pay now"),
        StoryEvent(2000, "error", pay, msg="TypeError: x is undefined"),
        StoryEvent(3000, "error", pay, msg="JavaScript error"),
        StoryEvent(4000, "scroll", pay, depth=80),
        StoryEvent(5000, "scroll", pay, depth=100),
        StoryEvent(6000, "scroll", pay),
        StoryEvent(7000, "scroll", pay),
        StoryEvent(8000, "custom", pay, name="signup"),
        StoryEvent(9000, "form_submit", pay, sel="form#card"),
    ]
    assert all(type(e) is StoryEvent for e in events)  # tuples the builder reads by name


async def test_events_come_in_time_order_and_stop_at_the_limit(sessionmaker, db):
    big = await seed_big_session(sessionmaker, n=300)
    events = await story_reads.story_events(db, big, limit=120)
    assert len(events) == 120
    assert [e.t for e in events] == [i * 1000 for i in range(120)]  # one event a second from the start
    story = build_story(await story_reads.story_events(db, big), duration_ms=300_000)
    assert story.events == 300 and story.visits == 6  # a page every 50 events
