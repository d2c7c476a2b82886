"""Reading issues: the list with trends, one issue's examples, pages, browsers and affected customers,
and "is it only them?" (which issue a customer's error belongs to and how many others met it).

The customers behind an issue are read when asked, never stored (see `_SESSION_CUSTOMERS`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.issues.models import Issue

# The customers behind an issue's sessions, read when asked (never stored: mapping links sessions to
# customers after grouping, and agents link and unlink them later). A session's customer is the one it
# identified as (unless an agent unlinked it), plus every customer mapped to it with enough confidence
# or linked by an agent: the rule of sessions.reads.customer_sessions_filter.
_SESSION_CUSTOMERS = (
    "SELECT us.customer_email AS email FROM user_sessions us "
    "WHERE us.id = {session} AND us.customer_email IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM session_customer_mapping u WHERE u.session_id = {session} "
    "AND u.customer_email = us.customer_email AND u.manual_decision = 'unlink') "
    "UNION SELECT m.customer_email FROM session_customer_mapping m WHERE m.session_id = {session} "
    "AND (m.manual_decision = 'link' "
    "OR (m.manual_decision IS NULL AND m.confidence_score >= :min_confidence))"
)
# One row per (issue, customer) with when the customer's sessions first and last met it.
_ISSUE_CUSTOMERS = (
    "SELECT s.issue_id, c.email, min(s.first_seen) AS first_seen, max(s.first_seen) AS last_seen "
    "FROM issue_sessions s JOIN LATERAL ("
    + _SESSION_CUSTOMERS.format(session="s.session_id")
    + ") c ON true "
    "WHERE s.issue_id = ANY({ids}) GROUP BY s.issue_id, c.email"
)
_CUSTOMER_COUNTS = text(
    "SELECT issue_id, count(*) AS n FROM ("  # noqa: S608 (constant parts)
    + _ISSUE_CUSTOMERS.format(ids=":ids")
    + ") c GROUP BY issue_id"
)
_AFFECTED = text(
    "SELECT email, first_seen, last_seen FROM ("  # noqa: S608 (constant parts)
    + _ISSUE_CUSTOMERS.format(ids=":ids")
    + ") c "
    "ORDER BY last_seen DESC, email LIMIT :n"
)
_CUSTOMER_OCCURRENCES = text(
    "SELECT c.email, o.occurred_at FROM issue_occurrences o JOIN LATERAL ("  # noqa: S608 (constant parts)
    + _SESSION_CUSTOMERS.format(session="o.session_id")
    + ") c ON true WHERE o.issue_id = :id AND c.email = ANY(:emails) ORDER BY o.occurred_at DESC LIMIT :n"
)
_ONLY_THEM = text(
    "WITH o AS (SELECT event_id, issue_id FROM issue_occurrences WHERE event_id = ANY(:events)), "  # noqa: S608
    "c AS (" + _ISSUE_CUSTOMERS.format(ids="ARRAY(SELECT DISTINCT issue_id FROM o)") + "), "
    "n AS (SELECT issue_id, count(*) AS others FROM c WHERE NOT (email = ANY(:exclude)) GROUP BY issue_id) "
    "SELECT o.event_id, i.id, i.title, i.kind, i.status, i.first_seen, coalesce(n.others, 0) AS others "
    "FROM o JOIN issues i ON i.id = o.issue_id LEFT JOIN n ON n.issue_id = o.issue_id"
)
# The same for one session's issues (its first occurrence of each), for the session page.
_SESSION_ONLY_THEM = text(
    str(_ONLY_THEM).replace(
        "SELECT event_id, issue_id FROM issue_occurrences WHERE event_id = ANY(:events)",
        "SELECT DISTINCT ON (issue_id) event_id, issue_id FROM issue_occurrences "
        "WHERE session_id = :session ORDER BY issue_id, occurred_at",
    )
)
TREND_HOURS = 24
PAGE_SIZE = 25
MAX_EXAMPLES = 10
MAX_CUSTOMERS = 50


@dataclass(frozen=True)
class IssueRow:
    issue: Issue
    customers: int
    trend: list[int]  # occurrences per hour, the last TREND_HOURS hours, oldest first


async def customer_counts(db: AsyncSession, ids: Sequence[int], *, min_confidence: float) -> dict[int, int]:
    if not ids:
        return {}
    rows = await db.execute(
        _CUSTOMER_COUNTS,
        {"ids": list(ids), "min_confidence": min_confidence},
    )
    return {r.issue_id: int(r.n) for r in rows}


async def trends(db: AsyncSession, ids: Sequence[int], *, now: datetime) -> dict[int, list[int]]:
    """Hourly counts of the last TREND_HOURS hours per issue, in one query (the list's sparklines)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=TREND_HOURS)
    out = {i: [0] * TREND_HOURS for i in ids}
    if not ids:
        return out
    rows = await db.execute(
        text(
            "SELECT issue_id, date_trunc('hour', bucket_start) AS hour, sum(count) AS n FROM issue_buckets "
            "WHERE issue_id = ANY(:ids) AND bucket_start >= :start AND bucket_start < :end "
            "GROUP BY issue_id, hour"
        ),
        {"ids": list(ids), "start": start, "end": end},
    )
    for r in rows:
        index = int((r.hour - start).total_seconds() // 3600)
        if 0 <= index < TREND_HOURS:
            out[r.issue_id][index] = int(r.n)
    return out


async def list_issues(
    db: AsyncSession,
    *,
    status: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    min_confidence: float,
    now: datetime | None = None,
) -> tuple[list[IssueRow], bool]:
    """Issues with activity since `since`, newest activity first; (rows, whether a next page exists)."""
    q = select(Issue)
    if status:
        q = q.where(Issue.status == status)
    if kind:
        q = q.where(Issue.kind == kind)
    if since:
        q = q.where(Issue.last_seen >= since)
    q = (
        q.order_by(Issue.last_seen.desc(), Issue.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size + 1)
    )
    found = list((await db.scalars(q)).all())
    more = len(found) > page_size
    found = found[:page_size]
    ids = [i.id for i in found]
    customers = await customer_counts(db, ids, min_confidence=min_confidence)
    series = await trends(db, ids, now=now or datetime.now(UTC))
    return [IssueRow(i, customers.get(i.id, 0), series[i.id]) for i in found], more


@dataclass(frozen=True)
class Example:
    session_id: uuid.UUID
    event_id: uuid.UUID
    occurred_at: datetime
    offset_ms: int  # from the session's start: where the player opens
    page: str
    browser: str | None
    device: str | None


async def examples(db: AsyncSession, issue_id: int, limit: int = MAX_EXAMPLES) -> list[Example]:
    """The latest occurrence in each of the issue's latest sessions."""
    rows = await db.execute(
        text(
            "SELECT DISTINCT ON (o.session_id) o.session_id, o.event_id, o.occurred_at, o.page, "
            "us.session_start, us.browser, us.device_type "
            "FROM (SELECT * FROM issue_occurrences WHERE issue_id = :id "
            "ORDER BY occurred_at DESC LIMIT 500) o "
            "JOIN user_sessions us ON us.id = o.session_id "
            "ORDER BY o.session_id, o.occurred_at DESC"
        ),
        {"id": issue_id},
    )
    found = [
        Example(
            session_id=r.session_id,
            event_id=r.event_id,
            occurred_at=r.occurred_at,
            offset_ms=max(0, int((r.occurred_at - r.session_start).total_seconds() * 1000)),
            page=r.page,
            browser=r.browser,
            device=r.device_type,
        )
        for r in rows
    ]
    return sorted(found, key=lambda e: e.occurred_at, reverse=True)[:limit]


async def breakdown(db: AsyncSession, issue_id: int) -> dict[str, list[tuple[str, int]]]:
    """Where it happens: occurrences per page template (all time) and sessions per browser."""
    pages = await db.execute(
        text(
            "SELECT page, sum(count) AS n FROM issue_buckets WHERE issue_id = :id "
            "GROUP BY page ORDER BY n DESC, page LIMIT 20"
        ),
        {"id": issue_id},
    )
    browsers = await db.execute(
        text(
            "SELECT coalesce(us.browser, 'Unknown') AS browser, count(*) AS n FROM issue_sessions s "
            "JOIN user_sessions us ON us.id = s.session_id WHERE s.issue_id = :id "
            "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20"
        ),
        {"id": issue_id},
    )
    return {
        "pages": [(r.page, int(r.n)) for r in pages],
        "browsers": [(r.browser, int(r.n)) for r in browsers],
    }


@dataclass(frozen=True)
class AffectedCustomer:
    email: str
    first_seen: datetime
    last_seen: datetime


async def affected_customers(
    db: AsyncSession, issue_id: int, *, min_confidence: float, limit: int = MAX_CUSTOMERS
) -> list[AffectedCustomer]:
    rows = await db.execute(
        _AFFECTED,
        {"ids": [issue_id], "min_confidence": min_confidence, "n": limit},
    )
    return [AffectedCustomer(r.email, r.first_seen, r.last_seen) for r in rows]


async def customer_occurrences(
    db: AsyncSession, issue_id: int, emails: Sequence[str], *, min_confidence: float, limit: int = 200
) -> dict[str, list[datetime]]:
    """When each of these customers hit the issue (their sessions' occurrences), newest first."""
    if not emails:
        return {}
    rows = await db.execute(
        _CUSTOMER_OCCURRENCES,
        {"id": issue_id, "emails": list(emails), "min_confidence": min_confidence, "n": limit},
    )
    out: dict[str, list[datetime]] = defaultdict(list)
    for r in rows:
        out[r.email].append(r.occurred_at)
    return dict(out)


async def record_failed_transfers(db: AsyncSession, issue_id: int, count: int, *, now: datetime) -> None:
    await db.execute(
        text("UPDATE issues SET failed_transfers = :n, failed_transfers_checked_at = :now WHERE id = :id"),
        {"n": count, "now": now, "id": issue_id},
    )


@dataclass(frozen=True)
class OnlyThem:
    """Which issue an event belongs to, and how many other customers hit that issue since it began."""

    issue_id: int
    title: str
    kind: str
    status: str
    first_seen: datetime
    other_customers: int


async def only_them(
    db: AsyncSession, event_ids: Sequence[uuid.UUID], customers: Sequence[str], *, min_confidence: float
) -> dict[uuid.UUID, OnlyThem]:
    """For a page's events, in one query: each one's issue and its count of *other* customers."""
    if not event_ids:
        return {}
    rows = await db.execute(
        _ONLY_THEM,
        {"events": list(event_ids), "exclude": list(customers), "min_confidence": min_confidence},
    )
    return {r.event_id: OnlyThem(r.id, r.title, r.kind, r.status, r.first_seen, int(r.others)) for r in rows}


def only_them_json(o: OnlyThem, now: datetime) -> dict[str, Any]:
    """What the "is it only them?" line shows: `TypeError on /pay: 37 other customers since 09:12 today`."""
    first = o.first_seen.astimezone(UTC)
    today = now.astimezone(UTC).date()
    if first.date() == today:
        since = f"{first:%H:%M} today"
    elif first.date() == today - timedelta(days=1):
        since = f"{first:%H:%M} yesterday"
    else:
        since = f"{first:%b} {first.day}" + (f", {first.year}" if first.year != today.year else "")
    return {
        "id": o.issue_id,
        "title": o.title,
        "kind": o.kind,
        "status": o.status,
        "otherCustomers": o.other_customers,
        "since": first.isoformat(),
        "sinceLabel": since,
        "link": f"/issues/{o.issue_id}",
    }


async def only_them_of_events(
    db: AsyncSession, event_ids: Sequence[uuid.UUID], customers: Sequence[str], *, min_confidence: float
) -> dict[str, dict[str, Any]]:
    """`only_them` as the pages show it, keyed by the event id's text."""
    found = await only_them(db, event_ids, customers, min_confidence=min_confidence)
    now = datetime.now(UTC)
    return {str(event_id): only_them_json(o, now) for event_id, o in found.items()}


async def only_them_of_session(
    db: AsyncSession, session_id: uuid.UUID, customers: Sequence[str], *, min_confidence: float
) -> list[dict[str, Any]]:
    """The issues one session hit, each with how many other customers hit it (one query)."""
    rows = await db.execute(
        _SESSION_ONLY_THEM,
        {"session": session_id, "exclude": list(customers), "min_confidence": min_confidence},
    )
    now = datetime.now(UTC)
    found = [OnlyThem(r.id, r.title, r.kind, r.status, r.first_seen, int(r.others)) for r in rows]
    return [only_them_json(o, now) for o in sorted(found, key=lambda o: -o.other_customers)]
