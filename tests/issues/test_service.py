"""Grouping stored events into issues, incrementally, and the status model (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from supportlens.audit.models import AuditEntry
from supportlens.issues import service
from supportlens.issues.models import Issue, IssueBucket, IssueOccurrence, IssueSession
from supportlens.issues.service import IssueStatusError, StoredEvent
from supportlens.sessions.models import SessionEvent, UserSession
from tests.support.agents import make_agent

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CHROME = "TypeError: Cannot read properties of undefined (reading 'amount')"
SAFARI = "TypeError: undefined is not an object (evaluating 'o.amount')"
STACK_CHROME = (
    "TypeError: Cannot read properties of undefined (reading 'amount')\n"
    "    at o (https://shop.example/static/js/main.3f9a2c1b.js:1:23456)\n"
    "    at HTMLButtonElement.submitPayment (https://shop.example/static/js/main.3f9a2c1b.js:1:30001)"
)
STACK_SAFARI = (
    "e@https://shop.example/static/js/main.77aa01ff.js:1:11111\n"
    "submitPayment@https://shop.example/static/js/main.77aa01ff.js:1:2222"
)


async def a_session(db: Any, name: str, email: str | None = None) -> UserSession:
    s = UserSession(
        clarity_project_id="p1",
        clarity_user_id=f"dev-{name}",
        clarity_session_id=name,
        session_start=T0,
        session_end=T0 + timedelta(minutes=30),
        customer_email=email,
    )
    db.add(s)
    await db.flush()
    return s


def error(session: UserSession, message: str, *, minute: float = 0, url: str = "https://shop.example/pay",
          stack: str | None = None) -> StoredEvent:  # fmt: skip
    data: dict[str, Any] = {"message": message}
    if stack:
        data["stack"] = stack
    return StoredEvent(uuid.uuid4(), session.id, "error", T0 + timedelta(minutes=minute), url, None, data)


def click(session: UserSession, kind: str, selector: str, *, minute: float = 0, url: str) -> StoredEvent:
    return StoredEvent(uuid.uuid4(), session.id, kind, T0 + timedelta(minutes=minute), url, selector, {})


async def issues(db: Any) -> list[Issue]:
    return list((await db.scalars(select(Issue).order_by(Issue.id))).all())


async def test_one_error_from_three_browsers_and_many_customers_is_one_issue(db):
    a, b, c = [await a_session(db, n) for n in ("s-a", "s-b", "s-c")]
    batch = [
        error(a, CHROME, minute=1, stack=STACK_CHROME),
        error(b, SAFARI, minute=2, stack=STACK_SAFARI),
        error(b, SAFARI, minute=3, stack=STACK_SAFARI),
        error(c, "Error: Transfer 8812 failed for jane@acme.io", url="https://shop.example/orders/8812"),
        error(c, "Error: Transfer 77 failed for [email]", minute=9, url="https://shop.example/orders/77/"),
        click(a, "rage_click", "div.row:nth-of-type(2) > button#pay", url="https://shop.example/pay"),
        click(b, "rage_click", "div.row:nth-of-type(5) > button#pay", url="https://shop.example/pay?x=1"),
        click(c, "dead_click", "div.row > button#pay", url="https://shop.example/pay"),
    ]
    result = await service.group_events(db, batch)
    await db.commit()

    assert result.occurrences == 8 and len(result.new_issues) == 4
    found = {(i.kind, i.title): (i.event_count, i.session_count) for i in await issues(db)}
    assert found == {
        ("error", "TypeError: cannot read property 'amount' of undefined"): (3, 2),
        ("error", "Error: Transfer <n> failed for <email>"): (2, 1),
        ("rage_click", "Rage clicks on div.row > button#pay at /pay"): (2, 2),
        ("dead_click", "Dead clicks on div.row > button#pay at /pay"): (1, 1),
    }
    transfer = next(i for i in await issues(db) if i.title.startswith("Error: Transfer"))
    assert transfer.page == "/orders/:id"
    assert (transfer.first_seen, transfer.last_seen) == (T0, T0 + timedelta(minutes=9))
    buckets = (await db.scalars(select(IssueBucket).where(IssueBucket.issue_id == transfer.id))).all()
    assert sorted((b.bucket_start, b.count) for b in buckets) == [(T0, 1), (T0 + timedelta(minutes=5), 1)]


async def test_distinct_errors_do_not_merge(db):
    s = await a_session(db, "s-1")
    await service.group_events(
        db,
        [
            error(s, "TypeError: Cannot read properties of undefined (reading 'amount')"),
            error(s, "ReferenceError: Stripe is not defined"),
            error(s, "Error: Payment declined"),
            error(s, "Error: Payment declined", url="https://shop.example/signup"),
        ],
    )
    await db.commit()
    assert len(await issues(db)) == 4


async def test_grouping_is_incremental_and_idempotent(db):
    s1, s2 = await a_session(db, "s-1"), await a_session(db, "s-2")
    first = [error(s1, "Error: Payment 1 declined", minute=m) for m in range(3)]
    await service.group_events(db, first)
    await db.commit()

    again = await service.group_events(db, [*first, error(s2, "Error: Payment 99 declined", minute=20)])
    await db.commit()

    assert (again.occurrences, again.skipped, again.new_issues) == (1, 3, ())
    (issue,) = await issues(db)
    assert (issue.event_count, issue.session_count) == (4, 2)
    assert issue.last_seen == T0 + timedelta(minutes=20)
    assert await db.scalar(select(func.count()).select_from(IssueOccurrence)) == 4
    assert await db.scalar(select(func.count()).select_from(IssueSession)) == 2


async def test_concurrent_workers_count_every_event_once(sessionmaker):
    async with sessionmaker() as db:
        sessions = [await a_session(db, f"s-{i}") for i in range(6)]
        await db.commit()
    events = [error(s, f"Error: Order {n} failed", minute=n % 60) for n in range(60) for s in sessions[:1]]
    events += [error(s, "TypeError: x is not a function", minute=1) for s in sessions]

    async def worker(part: list[StoredEvent]) -> None:
        async with sessionmaker() as db:
            await service.group_events(db, part)
            await db.commit()

    # Overlapping halves, as two workers retrying each other's batches would see them.
    await asyncio.gather(worker(events[:45]), worker(events[20:]), worker(events[::2]))
    async with sessionmaker() as db:
        counts = {i.title: (i.event_count, i.session_count) for i in await issues(db)}
    assert counts == {"Error: Order <n> failed": (60, 1), "TypeError: x is not a function": (6, 6)}


async def test_load_events_reads_issue_types_from_session_events(db):
    s = await a_session(db, "s-1")
    ids = [uuid.uuid4() for _ in range(3)]
    db.add_all(
        [
            SessionEvent(id=ids[0], session_id=s.id, event_type="error", timestamp=T0,
                         page_url="https://shop.example/pay", event_data={"message": "Error: boom 1"}),
            SessionEvent(id=ids[1], session_id=s.id, event_type="click", timestamp=T0, event_data={}),
            SessionEvent(id=ids[2], session_id=s.id, event_type="dead_click", timestamp=T0,
                         page_url="https://shop.example/pay", element_selector="button#pay", event_data={}),
        ]
    )  # fmt: skip
    await db.commit()
    loaded = await service.load_events(db, ids, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    assert sorted(e.event_type for e in loaded) == ["dead_click", "error"]
    result = await service.group_events(db, loaded)
    assert result.occurrences == 2


async def test_status_transitions_are_checked_recorded_and_audited(db, sessionmaker):
    agent = await make_agent(sessionmaker, role="agent")
    s = await a_session(db, "s-1")
    session_id = s.id
    result = await service.group_events(db, [error(s, "Error: boom")])
    await db.commit()
    (issue_id,) = result.new_issues

    await service.set_status(db, issue_id, "acknowledged", agent=agent, now=T0 + timedelta(hours=1))
    await service.set_status(
        db, issue_id, "resolved", agent=agent, reason="fixed in 4.2", now=T0 + timedelta(hours=2)
    )
    await db.commit()
    with pytest.raises(IssueStatusError, match="resolved can be set to acknowledged, not 'new'"):
        await service.set_status(db, issue_id, "new", agent=agent)
    with pytest.raises(IssueStatusError):
        await service.set_status(db, issue_id, "regressed", agent=agent)
    await db.rollback()
    s = await db.get(UserSession, session_id)

    # A late event from before the fix does not reopen it; one after the fix does.
    late = await service.group_events(db, [error(s, "Error: boom", minute=90)])
    assert late.regressed_issues == ()
    back = await service.group_events(db, [error(s, "Error: boom", minute=150)])
    await db.commit()
    assert back.regressed_issues == (issue_id,)

    history = await service.status_history(db, issue_id)
    assert [(h.from_status, h.to_status, h.agent_id is not None) for h in history] == [
        (None, "new", False),
        ("new", "acknowledged", True),
        ("acknowledged", "resolved", True),
        ("resolved", "regressed", False),
    ]
    assert history[2].reason == "fixed in 4.2"
    audited = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "issue.status"))).all()
    assert [(a.target, a.detail) for a in audited] == [
        (str(issue_id), {"from": "new", "to": "acknowledged"}),
        (str(issue_id), {"from": "acknowledged", "to": "resolved"}),
    ]
    await service.set_status(db, issue_id, "acknowledged", agent=agent)
    await db.commit()
    assert (await db.get(Issue, issue_id)).status == "acknowledged"


async def test_unknown_issue(db):
    with pytest.raises(service.IssueNotFound):
        await service.set_status(db, 424242, "resolved", agent=None)


async def test_hourly_and_page_series(db):
    s = await a_session(db, "s-1")
    events = [error(s, "Error: boom", minute=m) for m in (0, 4, 6, 61, 62)]
    events.append(error(s, "Error: other", minute=7))
    await service.group_events(db, events)
    await db.commit()
    boom = next(i for i in await issues(db) if i.title == "Error: boom")
    hours = await service.hourly_counts(db, boom.id, since=T0, until=T0 + timedelta(hours=3))
    assert [n for _, n in hours] == [3, 2, 0]
    by_page = await service.bucket_counts(db, page="/pay", since=T0, until=T0 + timedelta(hours=1))
    assert by_page == {T0: 2, T0 + timedelta(minutes=5): 2}
    with pytest.raises(ValueError):
        await service.bucket_counts(db, since=T0, until=T0)
