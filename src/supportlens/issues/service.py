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

    counts, first, last, buckets, sessions = _tally(new_signals, issue_ids)
    touched = sorted(counts)

    # Lock the issues in id order first, so workers grouping overlapping batches never deadlock. NO KEY
    # UPDATE, the lock the count UPDATE takes anyway: FOR UPDATE would also wait on the key-share locks
    # the occurrences' foreign keys hold, and two workers each holding one would deadlock.
    await db.execute(
        text("SELECT id FROM issues WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"), {"ids": touched}
    )
    await _add_buckets(db, buckets)
    session_counts = await _add_sessions(db, sessions)
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


def _tally(
    signals: list[tuple[StoredEvent, Fingerprint]], issue_ids: dict[str, int]
) -> tuple[
    dict[int, int],
    dict[int, datetime],
    dict[int, datetime],
    dict[tuple[int, str, datetime], int],
    dict[tuple[int, uuid.UUID], datetime],
]:
    """Per issue: new occurrences, first and last seen; per (issue, page, bucket) and (issue, session)."""
    counts: dict[int, int] = defaultdict(int)
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    buckets: dict[tuple[int, str, datetime], int] = defaultdict(int)
    sessions: dict[tuple[int, uuid.UUID], datetime] = {}
    for event, fp in signals:
        issue = issue_ids[fp.key]
        counts[issue] += 1
        first[issue] = min(first.get(issue, event.timestamp), event.timestamp)
        last[issue] = max(last.get(issue, event.timestamp), event.timestamp)
        buckets[(issue, fp.page, bucket_start(event.timestamp))] += 1
        key = (issue, event.session_id)
        sessions[key] = min(sessions.get(key, event.timestamp), event.timestamp)
    return counts, first, last, buckets, sessions


async def _add_buckets(db: AsyncSession, buckets: dict[tuple[int, str, datetime], int]) -> None:
    """Add the occurrences to each (issue, page, five-minute bucket) count."""
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


async def _add_sessions(db: AsyncSession, sessions: dict[tuple[int, uuid.UUID], datetime]) -> dict[int, int]:
    """Note each (issue, session) first met; returns, per issue, how many of its sessions are new."""
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
    return session_counts


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
