"""The ingest service: one validated batch -> masked events, one upsert of its session and its mapping
job, in one transaction.

Hot path: one multi-row INSERT ... ON CONFLICT DO NOTHING for the events (no conflict target, so it
keeps working when session_events is partitioned by day with primary key (id, timestamp)), one
INSERT ... ON CONFLICT DO UPDATE for the session whose counters come from the batch itself, and one
INSERT of the mapping job into the task queue (supportlens.tasks.mapping.enqueue_statement). Only
when a retry brought duplicates does a small correcting UPDATE take them back out of the counters.
Ingest never scores: a stored batch always has its mapping job, a rolled-back one has none. Its new
errors, rage and dead clicks are marked pending for issue grouping, with a grouping job, in the same
transaction (supportlens.tasks.grouping).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Table, and_, case, cast, extract, func, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from supportlens.customers.emails import canonical_email
from supportlens.db.base import utcnow
from supportlens.metrics import INGEST_EVENTS
from supportlens.privacy.masking import mask_pii_text
from supportlens.sessions.automation import batch_reason
from supportlens.sessions.models import UserSession
from supportlens.sessions.schemas import EventIn, IngestBatch, IngestResult
from supportlens.sessions.sites import SiteInfo
from supportlens.tasks.grouping import GROUPED_TYPES, enqueue_grouping
from supportlens.tasks.mapping import enqueue_mapping

COUNTED = {"click": "click_count", "error": "error_count", "rage_click": "rage_click_count"}
COUNTED["dead_click"] = "dead_click_count"
# Free-text keys in event data that may carry PII (everything string-valued is masked anyway).


@dataclass(frozen=True)
class Device:
    device_type: str
    browser: str | None
    os: str | None


@lru_cache(maxsize=2048)
def parse_device(user_agent: str | None) -> Device:
    """Device type (desktop/mobile/tablet), browser and OS from a User-Agent, via ua-parser."""
    if not user_agent:
        return Device("desktop", None, None)
    from ua_parser import parse

    result = parse(user_agent[:512])
    browser = result.user_agent.family if result.user_agent else None
    os_name = result.os.family if result.os else None
    device_family = (result.device.family if result.device else "") or ""
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or (os_name == "Android" and "mobile" not in ua):
        kind = "tablet"
    elif "mobi" in ua or device_family in ("iPhone", "iPod") or os_name in ("iOS", "Android"):
        kind = "mobile"
    else:
        kind = "desktop"
    return Device(kind, (browser or None) and browser[:64], (os_name or None) and os_name[:64])


def recording_url(base: str, project_id: str, user_id: str, session_id: str) -> str:
    return f"{base.rstrip('/')}/player/{project_id}/{user_id}/{session_id}"


def _mask(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return mask_pii_text(value)[:limit]


def _mask_data(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[mask_pii_text(key)[:40]] = mask_pii_text(value)[:2000] if isinstance(value, str) else value
    return out


def _scroll_depth(event: EventIn) -> int:
    raw = event.data.get("depth")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return 0
    return max(0, min(100, int(raw)))


def _first_of_each_id(events: list[EventIn]) -> list[EventIn]:
    seen: set[uuid.UUID] = set()
    unique = []
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            unique.append(e)
    return unique


def _seconds_between(start: Any, end: Any) -> Any:
    return cast(func.round(extract("epoch", end - start)), Integer)


def _counts(events: list[EventIn]) -> dict[str, int]:
    kinds: Counter[str] = Counter(e.type for e in events)
    out = {column: kinds.get(kind, 0) for kind, column in COUNTED.items()}
    out["navigation_count"] = kinds.get("navigation", 0)
    out["event_count"] = len(events)
    return out


@lru_cache(maxsize=1)
def _upsert_statement() -> Any:
    """INSERT ... ON CONFLICT (projectId, userId, sessionId) DO UPDATE merging the batch into the session.

    Built once (statement construction is most of the CPU of a batch otherwise)."""
    stmt = postgresql.insert(UserSession)
    t, x = UserSession.__table__.c, stmt.excluded
    new_nav = t.navigation_count + x.navigation_count
    start_expr = func.least(t.session_start, x.session_start)
    end_expr = func.greatest(t.session_end, x.session_end)
    upsert = stmt.on_conflict_do_update(
        index_elements=["clarity_project_id", "clarity_user_id", "clarity_session_id"],
        set_={
            "session_start": start_expr,
            "session_end": end_expr,
            "duration_seconds": _seconds_between(start_expr, end_expr),
            "entry_url": case(
                (t.entry_url.is_(None), x.entry_url),
                (x.session_start < t.session_start, func.coalesce(x.entry_url, t.entry_url)),
                else_=t.entry_url,
            ),
            "exit_url": case(
                (t.exit_url.is_(None), x.exit_url),
                (x.session_end >= t.session_end, func.coalesce(x.exit_url, t.exit_url)),
                else_=t.exit_url,
            ),
            "navigation_count": new_nav,
            "page_num_max": func.greatest(t.page_num_max, x.page_num_max),
            "page_views": func.greatest(t.page_num_max, x.page_num_max, new_nav),
            "event_count": t.event_count + x.event_count,
            "click_count": t.click_count + x.click_count,
            "error_count": t.error_count + x.error_count,
            "rage_click_count": t.rage_click_count + x.rage_click_count,
            "dead_click_count": t.dead_click_count + x.dead_click_count,
            "max_scroll_depth": func.greatest(t.max_scroll_depth, x.max_scroll_depth),
            "customer_email": func.coalesce(x.customer_email, t.customer_email),
            "customer_name": case((x.customer_email.is_not(None), x.customer_name), else_=t.customer_name),
            "customer_external_id": case(
                (x.customer_email.is_not(None), x.customer_external_id), else_=t.customer_external_id
            ),
            "site_id": func.coalesce(t.site_id, x.site_id),
            "user_agent": func.coalesce(x.user_agent, t.user_agent),
            "device_type": x.device_type,
            "browser": func.coalesce(x.browser, t.browser),
            "os": func.coalesce(x.os, t.os),
            "client_ip": func.coalesce(x.client_ip, t.client_ip),
            "consent_analytics": func.coalesce(x.consent_analytics, t.consent_analytics),
            # The first reason found stays; a person's interaction, once seen, stays seen.
            "automated": func.coalesce(t.automated, x.automated),
            "human_interaction": case(
                (and_(t.human_interaction.is_(None), x.human_interaction.is_(None)), None),
                else_=func.coalesce(t.human_interaction, False) | func.coalesce(x.human_interaction, False),
            ),
            "updated_at": x.updated_at,
        },
    ).returning(UserSession)
    return upsert


async def ingest_batch(
    db: AsyncSession,
    site: SiteInfo | None,
    batch: IngestBatch,
    *,
    client_ip: str | None,
    user_agent: str | None,
    player_base_url: str = "https://clarity.microsoft.com",
    commit: bool = True,
) -> IngestResult:
    """Store one batch (already validated and authorised) and enqueue its mapping job.

    Raises on any database error: nothing stays, and no job either."""
    now = utcnow()
    # An id repeated inside the batch is one event (the first copy): the rest are duplicates, and
    # the session's counters below count each stored event once.
    unique = _first_of_each_id(batch.events)
    repeated_in_batch = len(batch.events) - len(unique)
    events = sorted(unique, key=lambda e: e.ts)
    ids = batch.clarity
    page_url = _mask(batch.page.url, 2048) if batch.page else None
    first, last = (events[0], events[-1]) if events else (None, None)
    start = first.ts if first else now
    end = last.ts if last else now
    device = parse_device(user_agent)
    customer = batch.customer if batch.customer and (batch.customer.email or batch.customer.id) else None
    email = canonical_email(customer.email) if customer and customer.email else None
    counts = _counts(events)
    page_num = ids.page_num or 0
    automation = batch.automation

    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "site_id": site.id if site else None,
        "clarity_project_id": ids.project_id,
        "clarity_user_id": ids.user_id,
        "clarity_session_id": ids.session_id,
        "customer_email": email,
        "customer_name": (customer.name or None) if customer else None,
        "customer_external_id": (customer.id or None) if customer else None,
        "session_start": start,
        "session_end": end,
        "duration_seconds": max(0, int((end - start).total_seconds())),
        "page_views": max(page_num, counts["navigation_count"]),
        "page_num_max": page_num,
        "entry_url": (_mask(first.url, 2048) if first and first.url else None) or page_url,
        "exit_url": (_mask(last.url, 2048) if last and last.url else None) or page_url,
        "max_scroll_depth": max((_scroll_depth(e) for e in events if e.type == "scroll"), default=0),
        "recording_url": recording_url(player_base_url, ids.project_id, ids.user_id, ids.session_id),
        "user_agent": user_agent[:512] if user_agent else None,
        "device_type": device.device_type,
        "browser": device.browser,
        "os": device.os,
        "client_ip": client_ip[:64] if client_ip else None,
        "consent_analytics": batch.consent.analytics if batch.consent else None,
        "automated": batch_reason(user_agent, webdriver=automation.webdriver if automation else False),
        "human_interaction": automation.interacted if automation else None,
        "clarity_confirmed": False,
        "clarity_data": {},
        "created_at": now,
        "updated_at": now,
        **counts,
    }

    session = (
        await db.scalars(_upsert_statement(), [values], execution_options={"populate_existing": True})
    ).one()

    duplicates = repeated_in_batch
    grouped: list[tuple[uuid.UUID, datetime]] = []
    if events:
        rows = [
            {
                "id": e.id,
                "session_id": session.id,
                "event_type": e.type,
                "event_data": _mask_data(e.data),
                "timestamp": e.ts,
                "page_url": _mask(e.url, 2048) if e.url else page_url,
                "element_selector": _mask(e.selector, 512),
                "x": e.x,
                "y": e.y,
            }
            for e in events
        ]
        inserted = await _insert_events(db, rows)
        if len(inserted) < len(events):
            dupes = [e for e in events if e.id not in inserted]
            duplicates += len(dupes)
            await _take_back(db, session, dupes)
        grouped = [(e.id, e.ts) for e in events if e.id in inserted and e.type in GROUPED_TYPES]

    await enqueue_mapping(db, session_id=session.id, email=email, client_ip=client_ip, acked_at=now)
    # Last before the commit: the grouping job's row stays locked by this batch for the shortest time.
    await enqueue_grouping(db, session_id=session.id, events=grouped)
    if commit:
        await db.commit()
    accepted = len(batch.events) - duplicates
    INGEST_EVENTS.labels("accepted").inc(accepted)
    if duplicates:
        INGEST_EVENTS.labels("duplicate").inc(duplicates)
    return IngestResult(accepted=accepted, duplicates=duplicates)


# One statement for any batch size: the rows travel as nine arrays, so PostgreSQL prepares it once
# and no per-row SQL is built (a multi-row VALUES list is rebuilt, and re-prepared, per batch size).
_UNNEST_EVENTS = text(
    'INSERT INTO session_events (id, session_id, event_type, event_data, "timestamp", page_url, '
    "element_selector, x, y) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:sessions AS uuid[]), CAST(:types AS text[]), "
    "CAST(:data AS jsonb[]), CAST(:times AS timestamptz[]), CAST(:urls AS text[]), "
    "CAST(:selectors AS text[]), CAST(:xs AS integer[]), CAST(:ys AS integer[])) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


async def _insert_events(db: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    def utc(value: datetime) -> datetime:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)

    params = {
        "ids": [r["id"] for r in rows],
        "sessions": [r["session_id"] for r in rows],
        "types": [r["event_type"] for r in rows],
        "data": [json.dumps(r["event_data"]) for r in rows],  # jsonb elements travel as JSON text
        "times": [utc(r["timestamp"]) for r in rows],
        "urls": [r["page_url"] for r in rows],
        "selectors": [r["element_selector"] for r in rows],
        "xs": [r["x"] for r in rows],
        "ys": [r["y"] for r in rows],
    }
    return {row[0] for row in (await db.execute(_UNNEST_EVENTS, params)).all()}


async def _take_back(db: AsyncSession, session: UserSession, dupes: list[EventIn]) -> None:
    """A retry re-sent events already stored: remove them from the counters added optimistically."""
    counts = _counts(dupes)
    table: Table = UserSession.__table__  # type: ignore[assignment]
    t = table.c
    new_nav = t.navigation_count - counts["navigation_count"]
    changes: dict[str, Any] = {name: getattr(t, name) - n for name, n in counts.items() if n}
    if counts["navigation_count"]:
        changes["page_views"] = func.greatest(t.page_num_max, new_nav)
    if not changes:
        return
    stmt = (
        update(table)
        .where(t.id == session.id)
        .values(changes)
        .returning(*(getattr(t, name) for name in changes))
    )
    row = (await db.execute(stmt)).one()
    for name, value in zip(changes, row, strict=True):
        set_committed_value(session, name, value)


def check_event_times(batch: IngestBatch, max_age_days: int) -> str | None:
    """The field name of the first event whose time is implausible (too old, or in the future)."""
    now = utcnow()
    oldest = now - timedelta(days=max_age_days)
    newest = now + timedelta(days=1)
    for i, e in enumerate(batch.events):
        ts = e.ts if e.ts.tzinfo else e.ts.replace(tzinfo=now.tzinfo)
        if not (oldest <= ts <= newest):
            return f"events.{i}.ts"
    return None
