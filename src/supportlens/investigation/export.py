"""Exports of a session's events and of a customer's sessions, as CSV or JSON, streamed page by page
(keyset pages on (timestamp, id), so an export of any size never loads all rows)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.sessions.models import SessionEvent, UserSession
from supportlens.sessions.reads import (
    bounded_text,
    customer_sessions_filter,
    error_message,
    event_data,
    offset_ms,
)
from supportlens.web.csv import csv_cell

EXPORT_PAGE = 1000


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell(v) for v in values])
    return buf.getvalue()


EVENT_COLUMNS = ("id", "timestamp", "offset_ms", "type", "page_url", "selector", "x", "y", "text", "message")


def _event_row(ev: SessionEvent, start: datetime) -> dict[str, Any]:
    data = event_data(ev)
    return {
        "id": str(ev.id),
        "timestamp": ev.timestamp.isoformat(),
        "offset_ms": offset_ms(ev.timestamp, start),
        "type": ev.event_type,
        "page_url": ev.page_url,
        "selector": ev.element_selector,
        "x": ev.x,
        "y": ev.y,
        "text": bounded_text(data.get("text"), 500) if ev.event_type != "error" else None,
        "message": error_message(data) if ev.event_type == "error" else None,
    }


async def _event_pages(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: uuid.UUID
) -> AsyncIterator[list[SessionEvent]]:
    ev = SessionEvent
    cursor: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessionmaker() as db:
            q = select(ev).where(ev.session_id == session_id)
            if cursor is not None:
                q = q.where(or_(ev.timestamp > cursor[0], and_(ev.timestamp == cursor[0], ev.id > cursor[1])))
            rows = list((await db.scalars(q.order_by(ev.timestamp, ev.id).limit(EXPORT_PAGE))).all())
        if not rows:
            return
        yield rows
        if len(rows) < EXPORT_PAGE:
            return
        cursor = (rows[-1].timestamp, rows[-1].id)


async def export_session_events(
    sessionmaker: async_sessionmaker[AsyncSession], session: UserSession, fmt: str
) -> AsyncIterator[str]:
    start = session.session_start
    if fmt == "csv":
        yield _csv_line(EVENT_COLUMNS)
        async for rows in _event_pages(sessionmaker, session.id):
            yield "".join(_csv_line([_event_row(r, start)[c] for c in EVENT_COLUMNS]) for r in rows)
        return
    head = {
        "id": str(session.id),
        "claritySessionId": session.clarity_session_id,
        "sessionStart": start.isoformat(),
        "sessionEnd": session.session_end.isoformat(),
    }
    yield '{"session": ' + json.dumps(head) + ', "events": ['
    first = True
    async for rows in _event_pages(sessionmaker, session.id):
        chunk = ",".join(json.dumps(_event_row(r, start)) for r in rows)
        yield ("" if first else ",") + chunk
        first = False
    yield "]}\n"


SESSION_COLUMNS = (
    "id",
    "clarity_session_id",
    "session_start",
    "session_end",
    "duration_seconds",
    "page_views",
    "device_type",
    "browser",
    "os",
    "entry_url",
    "exit_url",
    "errors",
    "rage_clicks",
    "dead_clicks",
    "max_scroll_depth",
    "recording_url",
)


def _session_row(s: UserSession) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "clarity_session_id": s.clarity_session_id,
        "session_start": s.session_start.isoformat(),
        "session_end": s.session_end.isoformat(),
        "duration_seconds": s.duration_seconds,
        "page_views": s.page_views,
        "device_type": s.device_type,
        "browser": s.browser,
        "os": s.os,
        "entry_url": s.entry_url,
        "exit_url": s.exit_url,
        "errors": s.error_count,
        "rage_clicks": s.rage_click_count,
        "dead_clicks": s.dead_click_count,
        "max_scroll_depth": s.max_scroll_depth,
        "recording_url": s.recording_url,
    }


async def _session_pages(
    sessionmaker: async_sessionmaker[AsyncSession], email: str, min_confidence: float
) -> AsyncIterator[list[UserSession]]:
    us = UserSession
    cursor: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessionmaker() as db:
            q = select(us).where(customer_sessions_filter(email, min_confidence))
            if cursor is not None:
                q = q.where(
                    or_(us.session_start < cursor[0], and_(us.session_start == cursor[0], us.id > cursor[1]))
                )
            rows = list(
                (await db.scalars(q.order_by(us.session_start.desc(), us.id).limit(EXPORT_PAGE))).all()
            )
        if not rows:
            return
        yield rows
        if len(rows) < EXPORT_PAGE:
            return
        cursor = (rows[-1].session_start, rows[-1].id)


async def export_customer_sessions(
    sessionmaker: async_sessionmaker[AsyncSession], email: str, fmt: str, min_confidence: float
) -> AsyncIterator[str]:
    if fmt == "csv":
        yield _csv_line(SESSION_COLUMNS)
        async for rows in _session_pages(sessionmaker, email, min_confidence):
            yield "".join(_csv_line([_session_row(r)[c] for c in SESSION_COLUMNS]) for r in rows)
        return
    yield '{"customer": ' + json.dumps(email) + ', "sessions": ['
    first = True
    async for rows in _session_pages(sessionmaker, email, min_confidence):
        yield ("" if first else ",") + ",".join(json.dumps(_session_row(r)) for r in rows)
        first = False
    yield "]}\n"
