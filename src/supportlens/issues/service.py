"""Grouping new events into issues, and issues' status changes (PostgreSQL).

Grouping is incremental: `group_events` touches only the rows of the fingerprints, buckets and
sessions in the events it is given, with a fixed number of set-based statements per call, so a
batch costs in proportion to its own size and not to what is stored. It is idempotent (an event
already grouped is skipped by its id), safe to run from several workers at once (issue rows are
locked in id order before they are counted), and it leaves the transaction to the caller: a task
that groups a batch commits once.

Status: a new fingerprint starts `new`; agents move it to `acknowledged` or `resolved` (and a
resolved one back to `acknowledged`); when it happens again after it was resolved it becomes
`regressed`, by the system. Every change is written to `issue_status_changes`, and agents'
changes to the audit log too.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit import service as audit
from supportlens.issues.fingerprint import Fingerprint, fingerprint_event
from supportlens.issues.models import BUCKET_MINUTES, Issue, IssueStatusChange

ISSUE_EVENT_TYPES = ("error", "rage_click", "dead_click")

# Who may move an issue where. `new` and `regressed` are only ever set by the system.
AGENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "resolved"}),
    "acknowledged": frozenset({"resolved"}),
    "resolved": frozenset({"acknowledged"}),
    "regressed": frozenset({"acknowledged", "resolved"}),
}


class IssueNotFound(LookupError):
    pass


class IssueStatusError(ValueError):
    """A change the status model does not allow (the message says which and why)."""


@dataclass(frozen=True)
class StoredEvent:
    """What grouping reads of one stored event."""

    id: uuid.UUID
    session_id: uuid.UUID
    event_type: str
    timestamp: datetime
    page_url: str | None = None
    selector: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupingResult:
    occurrences: int = 0  # events grouped now (not seen before)
    skipped: int = 0  # events already grouped, or not issue types
    new_issues: tuple[int, ...] = ()
    touched_issues: tuple[int, ...] = ()
    regressed_issues: tuple[int, ...] = ()


def bucket_start(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=ts.minute - ts.minute % BUCKET_MINUTES, second=0, microsecond=0)


async def load_events(
    db: AsyncSession, event_ids: Sequence[uuid.UUID], *, since: datetime, until: datetime
) -> list[StoredEvent]:
    """The issue-type events among `event_ids` (the time range prunes session_events' daily partitions)."""
    if not event_ids:
        return []
    rows = await db.execute(
        text(
            'SELECT id, session_id, event_type, event_data, "timestamp", page_url, element_selector '
            'FROM session_events WHERE id = ANY(:ids) AND "timestamp" BETWEEN :since AND :until '
            "AND event_type = ANY(:types)"
        ),
        {"ids": list(event_ids), "since": since, "until": until, "types": list(ISSUE_EVENT_TYPES)},
    )
    return [
        StoredEvent(
            id=r.id,
            session_id=r.session_id,
            event_type=r.event_type,
            timestamp=r.timestamp,
            page_url=r.page_url,
            selector=r.element_selector,
            data=r.event_data or {},
        )
        for r in rows
    ]


async def group_events(db: AsyncSession, events: Sequence[StoredEvent]) -> GroupingResult:
    """Group events into issues: create new fingerprints, count occurrences, buckets and sessions."""
    signals: list[tuple[StoredEvent, Fingerprint]] = []
    for event in events:
        fp = fingerprint_event(event.event_type, event.data, event.page_url, event.selector)
        if fp is not None:
            signals.append((event, fp))
    if not signals:
        return GroupingResult(skipped=len(events))

    issue_ids, created = await _issue_ids(db, signals)

    # Occurrences: the event id decides whether this event was grouped before.
    fresh = await db.execute(
        text(
            "INSERT INTO issue_occurrences (event_id, issue_id, session_id, occurred_at, page) "
            "SELECT * FROM unnest(CAST(:events AS uuid[]), CAST(:issues AS bigint[]), "
            "CAST(:sessions AS uuid[]), "
            "CAST(:times AS timestamptz[]), CAST(:pages AS text[])) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        ),
        {
            "events": [e.id for e, _ in signals],
            "issues": [issue_ids[fp.key] for _, fp in signals],
            "sessions": [e.session_id for e, _ in signals],
            "times": [e.timestamp for e, _ in signals],
            "pages": [fp.page for _, fp in signals],
        },
    )
    fresh_ids = set(fresh.scalars())
    new_signals = [(e, fp) for e, fp in signals if e.id in fresh_ids]
    if not new_signals:
        return GroupingResult(skipped=len(events), new_issues=tuple(sorted(created)))

    counts: dict[int, int] = defaultdict(int)
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    buckets: dict[tuple[int, str, datetime], int] = defaultdict(int)
    sessions: dict[tuple[int, uuid.UUID], datetime] = {}
    for event, fp in new_signals:
        issue = issue_ids[fp.key]
        counts[issue] += 1
        first[issue] = min(first.get(issue, event.timestamp), event.timestamp)
        last[issue] = max(last.get(issue, event.timestamp), event.timestamp)
        buckets[(issue, fp.page, bucket_start(event.timestamp))] += 1
        key = (issue, event.session_id)
        sessions[key] = min(sessions.get(key, event.timestamp), event.timestamp)
    touched = sorted(counts)

    # Lock the issues in id order first, so workers grouping overlapping batches never deadlock. NO KEY
    # UPDATE, the lock the count UPDATE takes anyway: FOR UPDATE would also wait on the key-share locks
    # the occurrences' foreign keys hold, and two workers each holding one would deadlock.
    await db.execute(
        text("SELECT id FROM issues WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"), {"ids": touched}
    )
    bucket_keys = sorted(buckets)
    await db.execute(
        text(
            "INSERT INTO issue_buckets (issue_id, page, bucket_start, count) "
            "SELECT * FROM unnest(CAST(:issues AS bigint[]), CAST(:pages AS text[]), "
            "CAST(:starts AS timestamptz[]), CAST(:counts AS integer[])) "
            "ON CONFLICT (issue_id, page, bucket_start) "
            "DO UPDATE SET count = issue_buckets.count + EXCLUDED.count"
        ),
        {
            "issues": [k[0] for k in bucket_keys],
            "pages": [k[1] for k in bucket_keys],
            "starts": [k[2] for k in bucket_keys],
            "counts": [buckets[k] for k in bucket_keys],
        },
    )
    session_keys = sorted(sessions, key=lambda k: (k[0], str(k[1])))
    new_sessions = await db.execute(
        text(
            "INSERT INTO issue_sessions (issue_id, session_id, first_seen) "
            "SELECT * FROM unnest(CAST(:issues AS bigint[]), CAST(:sessions AS uuid[]), "
            "CAST(:times AS timestamptz[])) "
            "ON CONFLICT (issue_id, session_id) DO NOTHING RETURNING issue_id"
        ),
        {
            "issues": [k[0] for k in session_keys],
            "sessions": [k[1] for k in session_keys],
            "times": [sessions[k] for k in session_keys],
        },
    )
    session_counts: dict[int, int] = defaultdict(int)
    for issue in new_sessions.scalars():
        session_counts[issue] += 1
    await db.execute(
        text(
            "UPDATE issues SET event_count = issues.event_count + u.n, "
            "session_count = issues.session_count + u.s, "
            "first_seen = LEAST(issues.first_seen, u.f), last_seen = GREATEST(issues.last_seen, u.l) "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:n AS bigint[]), CAST(:s AS integer[]), "
            "CAST(:f AS timestamptz[]), CAST(:l AS timestamptz[])) AS u(id, n, s, f, l) "
            "WHERE issues.id = u.id"
        ),
        {
            "ids": touched,
            "n": [counts[i] for i in touched],
            "s": [session_counts[i] for i in touched],
            "f": [first[i] for i in touched],
            "l": [last[i] for i in touched],
        },
    )
    regressed = await _regress(db, touched, last)
    return GroupingResult(
        occurrences=len(new_signals),
        skipped=len(events) - len(new_signals),
        new_issues=tuple(sorted(created)),
        touched_issues=tuple(touched),
        regressed_issues=tuple(regressed),
    )


async def _issue_ids(
    db: AsyncSession, signals: Sequence[tuple[StoredEvent, Fingerprint]]
) -> tuple[dict[str, int], set[int]]:
    """fingerprint -> issue id, creating the issues not seen before (with their `new` status row)."""
    seen: dict[str, tuple[Fingerprint, datetime, datetime]] = {}
    for event, fp in signals:
        if fp.key in seen:
            _, lo, hi = seen[fp.key]
            seen[fp.key] = (fp, min(lo, event.timestamp), max(hi, event.timestamp))
        else:
            seen[fp.key] = (fp, event.timestamp, event.timestamp)
    keys = sorted(seen)
    now = datetime.now(UTC)
    inserted = await db.execute(
        text(
            "INSERT INTO issues (fingerprint, kind, title, message, page, element, frames, status, "
            "first_seen, last_seen, event_count, session_count, status_changed_at, created_at) "
            "SELECT u.key, u.kind, u.title, u.message, u.page, u.element, u.frames, 'new', u.f, u.l, 0, 0, "
            ":now, :now "
            "FROM unnest(CAST(:keys AS text[]), CAST(:kinds AS text[]), CAST(:titles AS text[]), "
            "CAST(:messages AS text[]), CAST(:pages AS text[]), CAST(:elements AS text[]), "
            "CAST(:frames AS jsonb[]), "
            "CAST(:f AS timestamptz[]), CAST(:l AS timestamptz[])) "
            "AS u(key, kind, title, message, page, element, frames, f, l) "
            "ORDER BY u.key ON CONFLICT (fingerprint) DO NOTHING RETURNING id, fingerprint"
        ),
        {
            "keys": keys,
            "kinds": [seen[k][0].kind for k in keys],
            "titles": [seen[k][0].title for k in keys],
            "messages": [seen[k][0].message for k in keys],
            "pages": [seen[k][0].page for k in keys],
            "elements": [seen[k][0].element for k in keys],
            "frames": [json.dumps(list(seen[k][0].frames)) for k in keys],
            "f": [seen[k][1] for k in keys],
            "l": [seen[k][2] for k in keys],
            "now": now,
        },
    )
    ids = {row.fingerprint: row.id for row in inserted}
    created = set(ids.values())
    if created:
        db.add_all(
            IssueStatusChange(
                issue_id=i, from_status=None, to_status="new", changed_at=now, reason="first seen"
            )
            for i in sorted(created)
        )
    missing = [k for k in keys if k not in ids]
    if missing:
        existing = await db.execute(
            text("SELECT id, fingerprint FROM issues WHERE fingerprint = ANY(:keys)"), {"keys": missing}
        )
        ids.update({row.fingerprint: row.id for row in existing})
    return ids, created


async def _regress(db: AsyncSession, touched: Sequence[int], last: dict[int, datetime]) -> list[int]:
    """Resolved issues that happened again after they were resolved become `regressed`."""
    now = datetime.now(UTC)
    rows = await db.execute(
        text(
            "UPDATE issues SET status = 'regressed', status_changed_at = :now "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:l AS timestamptz[])) AS u(id, l) "
            "WHERE issues.id = u.id AND issues.status = 'resolved' AND u.l > issues.resolved_at "
            "RETURNING issues.id"
        ),
        {"ids": list(touched), "l": [last[i] for i in touched], "now": now},
    )
    regressed = sorted(rows.scalars())
    db.add_all(
        IssueStatusChange(
            issue_id=i,
            from_status="resolved",
            to_status="regressed",
            changed_at=now,
            reason="seen again after resolved",
        )
        for i in regressed
    )
    return regressed


async def set_status(
    db: AsyncSession,
    issue_id: int,
    to_status: str,
    *,
    agent: Any,
    reason: str | None = None,
    now: datetime | None = None,
    request: Any = None,
) -> Issue:
    """An agent changes an issue's status: checked against AGENT_TRANSITIONS, recorded and audited."""
    issue = (
        await db.execute(select(Issue).where(Issue.id == issue_id).with_for_update())
    ).scalar_one_or_none()
    if issue is None:
        raise IssueNotFound(f"no issue {issue_id}")
    allowed = AGENT_TRANSITIONS[issue.status]
    if to_status not in allowed:
        choices = ", ".join(sorted(allowed))
        raise IssueStatusError(f"an issue that is {issue.status} can be set to {choices}, not {to_status!r}")
    when = now or datetime.now(UTC)
    from_status = issue.status
    issue.status = to_status
    issue.status_changed_at = when
    if to_status == "resolved":
        issue.resolved_at = when
    db.add(
        IssueStatusChange(
            issue_id=issue.id,
            from_status=from_status,
            to_status=to_status,
            changed_at=when,
            agent_id=getattr(agent, "id", None),
            reason=reason[:1000] if reason else None,
        )
    )
    await audit.record(
        db,
        "issue.status",
        request=request,
        actor=agent,
        target_type="issue",
        target=str(issue.id),
        detail={"from": from_status, "to": to_status},
        commit=False,
    )
    await db.flush()
    return issue


async def status_history(db: AsyncSession, issue_id: int) -> list[IssueStatusChange]:
    rows = await db.execute(
        select(IssueStatusChange)
        .where(IssueStatusChange.issue_id == issue_id)
        .order_by(IssueStatusChange.id)  # the order they were recorded in
    )
    return list(rows.scalars())


async def bucket_counts(
    db: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    issue_id: int | None = None,
    page: str | None = None,
) -> dict[datetime, int]:
    """Counts per bucket of one issue (all pages) or one page template (all issues): the spike series."""
    if (issue_id is None) == (page is None):
        raise ValueError("give exactly one of issue_id and page")
    column, value = ("issue_id", issue_id) if issue_id is not None else ("page", page)
    rows = await db.execute(
        text(
            f"SELECT bucket_start, sum(count) AS n FROM issue_buckets WHERE {column} = :value "  # noqa: S608 (fixed column)
            "AND bucket_start >= :since AND bucket_start < :until GROUP BY bucket_start ORDER BY bucket_start"
        ),
        {"value": value, "since": since, "until": until},
    )
    return {r.bucket_start: int(r.n) for r in rows}


async def hourly_counts(
    db: AsyncSession, issue_id: int, *, since: datetime, until: datetime
) -> list[tuple[datetime, int]]:
    """The issue's hourly series (every hour of the range, zeros included) for its chart."""
    series = await bucket_counts(db, issue_id=issue_id, since=since, until=until)
    hours: dict[datetime, int] = defaultdict(int)
    for start, n in series.items():
        hours[start.replace(minute=0)] += n
    first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out: list[tuple[datetime, int]] = []
    hour = first
    while hour < until:
        out.append((hour, hours.get(hour, 0)))
        hour += timedelta(hours=1)
    return out


# ---- reading: the list, one issue, and "is it only them?" ------------------------------------------

# The customers behind an issue's sessions, read when asked (never stored: mapping links sessions to
# customers after grouping, and agents link and unlink them later). A session's customer is the one it
# identified as (unless an agent unlinked it), plus every customer mapped to it with enough confidence
# or linked by an agent: the rule of investigation.service.customer_sessions_filter.
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
