"""The ingest service: one validated batch -> masked events, one statement storing the session, its
events and its jobs, in one transaction.

Hot path: one statement (_STORE) does it all: the session's INSERT ... ON CONFLICT DO UPDATE, whose
counters come from the batch itself; its events' INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
NOTHING; the mapping job's INSERT into the task queue (supportlens.tasks.mapping); and, for the new
errors, rage and dead clicks, their pending rows for issue grouping and the grouping job if none waits
(supportlens.tasks.grouping). Then the commit. Only when a retry brought duplicates does a small
correcting UPDATE take them back out of the counters.
Ingest never scores: a stored batch always has its mapping job, a rolled-back one has none.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Table, func, text, update
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.capture.schemas import EventIn, IngestBatch, IngestResult
from supportlens.capture.sites import SiteInfo
from supportlens.customers.emails import canonical_email
from supportlens.db.base import utcnow
from supportlens.integrations.clarity.urls import recording_url
from supportlens.masking import mask_pii_text
from supportlens.metrics import INGEST_EVENTS
from supportlens.sessions.automation import batch_reason
from supportlens.sessions.models import UserSession
from supportlens.tasks import grouping, mapping

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


def _counts(events: list[EventIn]) -> dict[str, int]:
    kinds: Counter[str] = Counter(e.type for e in events)
    out = {column: kinds.get(kind, 0) for kind, column in COUNTED.items()}
    out["navigation_count"] = kinds.get("navigation", 0)
    out["event_count"] = len(events)
    return out


# The whole batch is one statement (one round trip, one parse of the protocol, no ORM): the session's
# upsert, whose counters come from the batch itself, then its events, which travel as eight arrays so
# that PostgreSQL prepares it once whatever the batch size, then its jobs (m: mapping; p and g: issue
# grouping, from the events that were new). It answers the session's id and the ids of the events that
# were new (ON CONFLICT DO NOTHING has no conflict target, so it keeps working when session_events is
# partitioned by day with primary key (id, timestamp)).
_STORE = text(
    "WITH s AS ("  # noqa: S608 (constant parts: the queue's CTEs)
    "INSERT INTO user_sessions (id, site_id, clarity_project_id, clarity_user_id, clarity_session_id, "
    "customer_email, "
    "customer_name, customer_external_id, session_start, session_end, duration_seconds, "
    "page_views, navigation_count, page_num_max, entry_url, exit_url, event_count, click_count, "
    "error_count, rage_click_count, dead_click_count, max_scroll_depth, recording_url, "
    "user_agent, device_type, browser, os, client_ip, consent_analytics, automated, human_interaction, "
    "clarity_confirmed, clarity_data, created_at, updated_at) "
    "VALUES (:id, :site_id, :clarity_project_id, :clarity_user_id, :clarity_session_id, :customer_email, "
    ":customer_name, :customer_external_id, :session_start, :session_end, :duration_seconds, "
    ":page_views, :navigation_count, :page_num_max, :entry_url, :exit_url, :event_count, "
    ":click_count, :error_count, :rage_click_count, :dead_click_count, :max_scroll_depth, "
    ":recording_url, :user_agent, :device_type, :browser, :os, :client_ip, :consent_analytics, "
    ":automated, :human_interaction, :clarity_confirmed, :clarity_data, :created_at, :updated_at) "
    "ON CONFLICT (clarity_project_id, clarity_user_id, clarity_session_id) DO UPDATE SET "
    "site_id = coalesce(user_sessions.site_id, excluded.site_id), "
    "customer_email = coalesce(excluded.customer_email, user_sessions.customer_email), "
    "customer_name = CASE WHEN excluded.customer_email IS NOT NULL THEN excluded.customer_name "
    "ELSE user_sessions.customer_name END, "
    "customer_external_id = CASE WHEN excluded.customer_email IS NOT NULL "
    "THEN excluded.customer_external_id ELSE user_sessions.customer_external_id END, "
    "session_start = least(user_sessions.session_start, excluded.session_start), "
    "session_end = greatest(user_sessions.session_end, excluded.session_end), "
    "duration_seconds = CAST(round(EXTRACT(epoch FROM greatest(user_sessions.session_end, "
    "excluded.session_end) - least(user_sessions.session_start, excluded.session_start))) AS integer), "
    "page_views = greatest(user_sessions.page_num_max, excluded.page_num_max, "
    "user_sessions.navigation_count + excluded.navigation_count), "
    "navigation_count = user_sessions.navigation_count + excluded.navigation_count, "
    "page_num_max = greatest(user_sessions.page_num_max, excluded.page_num_max), "
    "entry_url = CASE WHEN user_sessions.entry_url IS NULL THEN excluded.entry_url "
    "WHEN excluded.session_start < user_sessions.session_start "
    "THEN coalesce(excluded.entry_url, user_sessions.entry_url) ELSE user_sessions.entry_url END, "
    "exit_url = CASE WHEN user_sessions.exit_url IS NULL THEN excluded.exit_url "
    "WHEN excluded.session_end >= user_sessions.session_end "
    "THEN coalesce(excluded.exit_url, user_sessions.exit_url) ELSE user_sessions.exit_url END, "
    "event_count = user_sessions.event_count + excluded.event_count, "
    "click_count = user_sessions.click_count + excluded.click_count, "
    "error_count = user_sessions.error_count + excluded.error_count, "
    "rage_click_count = user_sessions.rage_click_count + excluded.rage_click_count, "
    "dead_click_count = user_sessions.dead_click_count + excluded.dead_click_count, "
    "max_scroll_depth = greatest(user_sessions.max_scroll_depth, excluded.max_scroll_depth), "
    "user_agent = coalesce(excluded.user_agent, user_sessions.user_agent), "
    "device_type = excluded.device_type, "
    "browser = coalesce(excluded.browser, user_sessions.browser), "
    "os = coalesce(excluded.os, user_sessions.os), "
    "client_ip = coalesce(excluded.client_ip, user_sessions.client_ip), "
    "consent_analytics = coalesce(excluded.consent_analytics, user_sessions.consent_analytics), "
    # The first automation reason found stays; a person's interaction, once seen, stays seen.
    "automated = coalesce(user_sessions.automated, excluded.automated), "
    "human_interaction = CASE WHEN user_sessions.human_interaction IS NULL "
    "AND excluded.human_interaction IS NULL THEN NULL "
    "ELSE coalesce(user_sessions.human_interaction, false) "
    "OR coalesce(excluded.human_interaction, false) END, "
    "updated_at = excluded.updated_at "
    "RETURNING id), "
    'e AS (INSERT INTO session_events (id, session_id, event_type, event_data, "timestamp", page_url, '
    "element_selector, x, y) "
    "SELECT u.id, s.id, u.event_type, u.event_data, u.ts, u.page_url, u.selector, u.x, u.y "
    "FROM s, unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:data AS jsonb[]), "
    "CAST(:times AS timestamptz[]), CAST(:urls AS text[]), CAST(:selectors AS text[]), "
    "CAST(:xs AS integer[]), CAST(:ys AS integer[])) "
    "AS u(id, event_type, event_data, ts, page_url, selector, x, y) "
    'ON CONFLICT DO NOTHING RETURNING id, event_type, "timestamp"), '
    f"m AS ({mapping.ENQUEUE_FROM_STORE}), "
    f"p AS ({grouping.PENDING}), "
    f"g AS ({grouping.ENQUEUE}) "
    "SELECT s.id, ARRAY(SELECT id FROM e) FROM s"
)
# _STORE as asyncpg takes it ($1, $2, ...), and the names of its parameters in that order: _store runs it
# on the driver's connection (asyncpg prepares it once per connection and keeps it).
_STORE_COMPILED = _STORE.compile(dialect=asyncpg_dialect())
_STORE_SQL = _STORE_COMPILED.string
_STORE_ORDER = tuple(_STORE_COMPILED.positiontup or ())


def _json(data: dict[str, Any]) -> str:
    """An event's data as JSON text (jsonb elements travel as text); orjson is ~70x faster per event."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, which jsonb stores as numeric
        return json.dumps(data)


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
    # the session's counters count each stored event once.
    events = _first_of_each_id(batch.events)
    repeated_in_batch = len(batch.events) - len(events)
    events.sort(key=lambda e: e.ts)
    page_url = _mask(batch.page.url, 2048) if batch.page else None
    session = _session_values(batch, events, now, page_url=page_url, user_agent=user_agent)
    params = {
        **session,
        "site_id": site.id if site else None,
        "recording_url": recording_url(
            player_base_url, batch.clarity.project_id, batch.clarity.user_id, batch.clarity.session_id
        ),
        "client_ip": client_ip[:64] if client_ip else None,
        **_event_arrays(events, page_url),
        **mapping.enqueue_params(email=session["customer_email"], client_ip=client_ip, acked_at=now),
        **grouping.enqueue_params(),
    }
    session_id, new_ids = await _store(db, params)
    duplicates = repeated_in_batch + await _take_back_duplicates(db, session_id, events, new_ids)
    if commit:
        await db.commit()
    accepted = len(batch.events) - duplicates
    INGEST_EVENTS.labels("accepted").inc(accepted)
    if duplicates:
        INGEST_EVENTS.labels("duplicate").inc(duplicates)
    return IngestResult(accepted=accepted, duplicates=duplicates)


def _session_values(
    batch: IngestBatch, events: list[EventIn], now: datetime, *, page_url: str | None, user_agent: str | None
) -> dict[str, Any]:
    """The session row's values from the batch's unique events (sorted by time): its Clarity ids, the
    signed-in customer, its span, entry and exit pages, counters, device, consent and automation."""
    ids = batch.clarity
    first, last = (events[0], events[-1]) if events else (None, None)
    start = first.ts if first else now
    end = last.ts if last else now
    device = parse_device(user_agent)
    customer = batch.customer if batch.customer and (batch.customer.email or batch.customer.id) else None
    counts = _counts(events)
    page_num = ids.page_num or 0
    automation = batch.automation
    return {
        "id": uuid.uuid4(),
        "clarity_project_id": ids.project_id,
        "clarity_user_id": ids.user_id,
        "clarity_session_id": ids.session_id,
        "customer_email": canonical_email(customer.email) if customer and customer.email else None,
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
        "user_agent": user_agent[:512] if user_agent else None,
        "device_type": device.device_type,
        "browser": device.browser,
        "os": device.os,
        "consent_analytics": batch.consent.analytics if batch.consent else None,
        "automated": batch_reason(user_agent, webdriver=automation.webdriver if automation else False),
        "human_interaction": automation.interacted if automation else None,
        "clarity_confirmed": False,
        "clarity_data": "{}",
        "created_at": now,
        "updated_at": now,
        **counts,
    }


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _event_arrays(events: list[EventIn], page_url: str | None) -> dict[str, list[Any]]:
    """The events as the statement's eight arrays, one element per event, masked."""
    return {
        "ids": [e.id for e in events],
        "types": [e.type for e in events],
        "data": [_json(_mask_data(e.data)) for e in events],
        "times": [_utc(e.ts) for e in events],
        "urls": [_mask(e.url, 2048) if e.url else page_url for e in events],
        "selectors": [_mask(e.selector, 512) for e in events],
        "xs": [e.x for e in events],
        "ys": [e.y for e in events],
    }


async def _take_back_duplicates(
    db: AsyncSession, session_id: uuid.UUID, events: list[EventIn], new_ids: list[uuid.UUID]
) -> int:
    """How many of the events were stored already (a retry), taken back out of the session's counters."""
    if len(new_ids) == len(events):
        return 0
    inserted = set(new_ids)
    dupes = [e for e in events if e.id not in inserted]
    await _take_back(db, session_id, dupes)
    return len(dupes)


async def _store(db: AsyncSession, params: dict[str, Any]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Run _STORE in the session's transaction: the session's id and the ids of the events that were new.

    The statement goes straight to asyncpg, past SQLAlchemy's execution machinery (parameter
    processing, execution context, result wrapping), which cost about a quarter of the store path's
    CPU in the app (bench/ingest_cost.py, its `sqlalchemy` variant). A database error still comes out
    as SQLAlchemy's DBAPIError, as through the session, so that the caller rolls back and replays it
    the same way; a connection that broke is invalidated, not handed back to the pool."""
    conn = await db.connection()
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    driver = raw.driver_connection
    assert driver is not None  # an open connection
    # SQLAlchemy's asyncpg adapter sends BEGIN only with the first statement that goes through it:
    # begin here, as it would, so that the session's commit and rollback end this transaction.
    if adapted._transaction is None:
        await adapted._start_transaction()
    try:
        row = await driver.fetchrow(_STORE_SQL, *[params[n] for n in _STORE_ORDER])
    except asyncpg.PostgresError as exc:
        raise DBAPIError(_STORE_SQL, None, exc) from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        await conn.invalidate(exc)
        raise DBAPIError(_STORE_SQL, None, exc, connection_invalidated=True) from exc
    return row[0], row[1]


async def _take_back(db: AsyncSession, session_id: uuid.UUID, dupes: list[EventIn]) -> None:
    """A retry re-sent events already stored: remove them from the counters added optimistically."""
    counts = _counts(dupes)
    table: Table = UserSession.__table__  # type: ignore[assignment]
    t = table.c
    new_nav = t.navigation_count - counts["navigation_count"]
    changes: dict[str, Any] = {name: getattr(t, name) - n for name, n in counts.items() if n}
    if counts["navigation_count"]:
        changes["page_views"] = func.greatest(t.page_num_max, new_nav)
    if changes:
        await db.execute(update(table).where(t.id == session_id).values(changes))


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
