"""Queries behind the session view and the customer pages: timeline windows, analytics, heatmap, export.

Everything here reads user_sessions / session_events / session_annotations / session_customer_mapping
directly and pages through events with a keyset on (timestamp, id), so a session of any size is served
in bounded windows and exports stream without loading all rows.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.customers.emails import InvalidEmail, canonical_email
from supportlens.db.base import utcnow
from supportlens.integrations.clarity.urls import heatmaps_url
from supportlens.investigation.models import ConversionGoal
from supportlens.mapping.models import SessionCustomerMapping
from supportlens.params import bounded_instant
from supportlens.privacy.masking import mask_email, mask_pii_text
from supportlens.problems import ProblemError
from supportlens.sessions.models import SessionAnnotation, SessionEvent, UserSession

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ACTIVE_GAP_SECONDS = 30
CLICK_TYPES = ("click", "rage_click", "dead_click")
MARKER_TYPES = ("navigation", "error", "rage_click", "dead_click")
MAX_MARKERS = 2000
DEFAULT_VIEWPORT = (1280, 800)
HEAT_WEIGHT = {"click": 1.0, "dead_click": 2.0, "rage_click": 3.0}
EXPORT_PAGE = 1000
CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------- sessions and customers


def normalise_email(raw: str) -> str:
    """The canonical e-mail (customers/emails.py), or a 400 naming `email`."""
    try:
        return canonical_email(raw)
    except InvalidEmail as exc:
        raise ProblemError(400, "Invalid e-mail", str(exc), field="email") from None


async def get_session(db: AsyncSession, session_id: uuid.UUID) -> UserSession:
    found = await db.get(UserSession, session_id)
    if found is None:
        raise ProblemError(404, "Session not found", f"no session {session_id}")
    return found


def _linked(email: str, min_confidence: float) -> Select[Any]:
    m = SessionCustomerMapping
    return select(m.session_id).where(
        m.customer_email == email,
        or_(
            m.manual_decision == "link",
            and_(m.manual_decision.is_(None), m.confidence_score >= min_confidence),
        ),
    )


def _unlinked(email: str) -> Select[Any]:
    m = SessionCustomerMapping
    return select(m.session_id).where(m.customer_email == email, m.manual_decision == "unlink")


def customer_sessions_filter(email: str, min_confidence: float) -> Any:
    """WHERE clause on UserSession: sessions linked to this customer (identified or mapped, not unlinked)."""
    return and_(
        or_(
            UserSession.id.in_(_linked(email, min_confidence)),
            and_(UserSession.customer_email == email, UserSession.automated.is_(None)),
        ),
        UserSession.id.not_in(_unlinked(email)),
    )


async def customer_of(db: AsyncSession, session: UserSession, min_confidence: float) -> dict[str, Any] | None:
    """The customer this session belongs to: a manual link, else the best mapping, else identify()."""
    m = SessionCustomerMapping
    rows = (await db.scalars(select(m).where(m.session_id == session.id))).all()
    unlinked = {r.customer_email for r in rows if r.manual_decision == "unlink"}
    best: SessionCustomerMapping | None = None
    for r in rows:
        if r.manual_decision == "unlink":
            continue
        if r.manual_decision != "link" and r.confidence_score < min_confidence:
            continue
        rank = (r.manual_decision == "link", r.confidence_score)
        if best is None or rank > (best.manual_decision == "link", best.confidence_score):
            best = r
    if best is not None:
        return {
            "email": best.customer_email,
            "method": best.mapping_method,
            "confidence": round(best.confidence_score, 2),
            "evidence": best.evidence or [],
        }
    if session.customer_email and session.customer_email not in unlinked:
        return {"email": session.customer_email, "method": "email_match", "confidence": 1.0, "evidence": []}
    return None


def is_viewer(principal: Any) -> bool:
    return getattr(getattr(principal, "agent", None), "role", None) == "viewer"


def recording_status(session: UserSession, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    expires = session.session_start + timedelta(days=settings.recording_retention_days)
    available = bool(session.recording_url) and now < expires
    return {
        "url": session.recording_url,
        "available": available,
        "expired": bool(session.recording_url) and not available,
        "expiresAt": expires.isoformat(),
    }


def clarity_heatmap_url(session: UserSession, settings: Settings) -> str | None:
    """Clarity's own heatmap page for the project: the session's stored link, else the recording's host."""
    if session.heatmap_url:
        return session.heatmap_url
    if not session.clarity_project_id:
        return None
    return heatmaps_url(
        session.clarity_project_id, base=settings.clarity_recordings_base_url, recording=session.recording_url
    )


def session_dict(
    session: UserSession, customer: dict[str, Any] | None, settings: Settings, *, viewer: bool
) -> dict[str, Any]:
    email = customer["email"] if customer else None
    rec = recording_status(session, settings)
    return {
        "id": str(session.id),
        "claritySessionId": session.clarity_session_id,
        "clarityUserId": session.clarity_user_id,
        "clarityProjectId": session.clarity_project_id,
        "sessionStart": session.session_start.isoformat(),
        "sessionEnd": session.session_end.isoformat(),
        "durationSeconds": session.duration_seconds,
        "pageViews": session.page_views,
        "deviceType": session.device_type,
        "browser": session.browser,
        "os": session.os,
        "entryUrl": _mask(session.entry_url, viewer),
        "exitUrl": _mask(session.exit_url, viewer),
        "recordingUrl": None if viewer else rec["url"],
        "hasRecording": rec["available"],
        "recordingExpiresAt": rec["expiresAt"],
        "customerEmail": (mask_email(email) if viewer else email) if email else None,
        "mapping": customer and {k: customer[k] for k in ("method", "confidence")},
    }


def _mask(value: str | None, viewer: bool) -> str | None:
    if value is None:
        return None
    return mask_pii_text(value) if viewer else value


# ---------------------------------------------------------------- events


def _data(ev: SessionEvent) -> dict[str, Any]:
    return ev.event_data if isinstance(ev.event_data, dict) else {}


def _str(value: Any, limit: int = 500) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text[:limit] if text else None


def viewport_of(data: dict[str, Any]) -> tuple[int, int] | None:
    vp = data.get("viewport")
    w = h = None
    if isinstance(vp, dict):
        w, h = vp.get("w") or vp.get("width"), vp.get("h") or vp.get("height")
    else:
        w, h = data.get("vw") or data.get("viewportWidth"), data.get("vh") or data.get("viewportHeight")
    try:
        if w and h and int(w) > 0 and int(h) > 0:
            return int(w), int(h)
    except (TypeError, ValueError):
        return None
    return None


def error_message(data: dict[str, Any]) -> str | None:
    return _str(data.get("message") or data.get("msg") or data.get("error") or data.get("text"))


def custom_name(data: dict[str, Any]) -> str | None:
    return _str(data.get("name") or data.get("event") or data.get("key"), 200)


def scroll_depth(data: dict[str, Any]) -> int | None:
    for key in ("depth", "maxDepth", "percent", "scrollDepth"):
        value = data.get(key)
        if isinstance(value, int | float):
            return max(0, min(100, int(value)))
    return None


def offset_ms(ts: datetime, start: datetime) -> int:
    return max(0, int((ts - start).total_seconds() * 1000))


def event_json(ev: SessionEvent, start: datetime, *, viewer: bool = False) -> dict[str, Any]:
    data = _data(ev)
    out: dict[str, Any] = {
        "id": str(ev.id),
        "t": offset_ms(ev.timestamp, start),
        "ts": ev.timestamp.isoformat(),
        "type": ev.event_type,
        "url": _mask(ev.page_url, viewer),
        "c": encode_cursor(ev.timestamp, ev.id),
    }
    if ev.element_selector:
        out["sel"] = _str(ev.element_selector, 300)
    if ev.x is not None and ev.y is not None:
        out["x"], out["y"] = ev.x, ev.y
    text = _str(data.get("text"), 200)
    if text and ev.event_type != "error":
        out["text"] = _mask(text, viewer)
    if ev.event_type == "error":
        out["msg"] = _mask(error_message(data) or "JavaScript error", viewer)
    title = _str(data.get("title"), 300)
    if title:
        out["title"] = _mask(title, viewer)
    vp = viewport_of(data)
    if vp:
        out["vw"], out["vh"] = vp
    if ev.event_type == "scroll":
        depth = scroll_depth(data)
        if depth is not None:
            out["depth"] = depth
    if ev.event_type == "custom":
        name = custom_name(data)
        if name:
            out["name"] = name
    return out


def encode_cursor(ts: datetime, event_id: uuid.UUID) -> str:
    micros = (ts - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{event_id.hex}"


def parse_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    """(time, event id) of a timeline cursor; ValueError when it is not one this API could have made."""
    micros, _, hexid = raw.partition(".")
    try:
        ts = EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise ValueError("not a cursor from this API") from None
    return bounded_instant(ts), uuid.UUID(hex=hexid)


def decode_cursor(raw: str, field_name: str) -> tuple[datetime, uuid.UUID]:
    try:
        return parse_cursor(raw)
    except ValueError:
        raise ProblemError(400, "Invalid cursor", "not a cursor from this API", field=field_name) from None


async def timeline_window(
    db: AsyncSession,
    session: UserSession,
    *,
    from_ms: int | None = None,
    after: str | None = None,
    before: str | None = None,
    limit: int = 200,
    viewer: bool = False,
) -> dict[str, Any]:
    """One window of events, ordered by time: from an offset, after a cursor, or before a cursor."""
    ev = SessionEvent
    q = select(ev).where(ev.session_id == session.id)
    descending = False
    if before:
        ts, eid = decode_cursor(before, "before")
        q = q.where(or_(ev.timestamp < ts, and_(ev.timestamp == ts, ev.id < eid)))
        descending = True
    elif after:
        ts, eid = decode_cursor(after, "after")
        q = q.where(or_(ev.timestamp > ts, and_(ev.timestamp == ts, ev.id > eid)))
    elif from_ms:
        q = q.where(ev.timestamp >= session.session_start + timedelta(milliseconds=from_ms))
    order = (ev.timestamp.desc(), ev.id.desc()) if descending else (ev.timestamp.asc(), ev.id.asc())
    rows = list((await db.scalars(q.order_by(*order).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if descending:
        rows.reverse()
    events = [event_json(r, session.session_start, viewer=viewer) for r in rows]
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    return {
        "sessionId": str(session.id),
        "events": events,
        "next": encode_cursor(last.timestamp, last.id) if last and (more or descending) else None,
        "prev": encode_cursor(first.timestamp, first.id)
        if first and (more if descending else bool(after or from_ms))
        else None,
    }


async def markers(db: AsyncSession, session: UserSession, *, viewer: bool = False) -> list[dict[str, Any]]:
    """The few events the timeline marks (pages, errors, rage and dead clicks), bounded."""
    ev = SessionEvent
    rows = (
        await db.scalars(
            select(ev)
            .where(ev.session_id == session.id, ev.event_type.in_(MARKER_TYPES))
            .order_by(ev.timestamp, ev.id)
            .limit(MAX_MARKERS)
        )
    ).all()
    return [event_json(r, session.session_start, viewer=viewer) for r in rows]


# ---------------------------------------------------------------- analytics


@dataclass
class SessionAnalytics:
    time_on_site_seconds: int
    active_seconds: int
    pages: int
    unique_pages: int
    bounce: bool
    conversions: int
    goals_reached: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    rage_clicks: int = 0
    dead_clicks: int = 0
    clicks: int = 0
    max_scroll_depth: int = 0
    event_count: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "timeOnSite": self.time_on_site_seconds,
            "activeTime": self.active_seconds,
            "pages": self.pages,
            "uniquePages": self.unique_pages,
            "bounce": self.bounce,
            "conversionEvents": self.conversions,
            "goalsReached": self.goals_reached,
            "errorCount": self.error_count,
            "rageClicks": self.rage_clicks,
            "deadClicks": self.dead_clicks,
            "clicks": self.clicks,
            "maxScrollDepth": self.max_scroll_depth,
            "eventCount": self.event_count,
        }


def active_seconds(timestamps: Iterable[datetime], gap_seconds: int = ACTIVE_GAP_SECONDS) -> int:
    """Sum of the gaps between consecutive events, leaving out idle gaps longer than gap_seconds."""
    total = 0.0
    prev: datetime | None = None
    for ts in timestamps:
        if prev is not None:
            gap = (ts - prev).total_seconds()
            if 0 <= gap <= gap_seconds:
                total += gap
        prev = ts
    return round(total)


ACTIVE_SECONDS_SQL = """
SELECT COALESCE(SUM(g), 0) FROM (
  SELECT EXTRACT(EPOCH FROM "timestamp" - lag("timestamp") OVER (ORDER BY "timestamp", id)) AS g
  FROM session_events WHERE session_id = :sid
) AS gaps WHERE g >= 0 AND g <= :limit
"""


async def active_seconds_sql(
    db: AsyncSession, session_id: uuid.UUID, gap_seconds: int = ACTIVE_GAP_SECONDS
) -> int:
    """`active_seconds` computed in the database (one row back instead of every timestamp)."""
    sql = text(ACTIVE_SECONDS_SQL)
    return round(float((await db.execute(sql, {"sid": session_id, "limit": gap_seconds})).scalar() or 0))


async def max_scroll_from_events(db: AsyncSession, session_id: uuid.UUID) -> int:
    ev = SessionEvent
    rows = (
        await db.scalars(select(ev.event_data).where(ev.session_id == session_id, ev.event_type == "scroll"))
    ).all()
    depths = [scroll_depth(d if isinstance(d, dict) else {}) for d in rows]
    return max((d for d in depths if d is not None), default=0)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_goals(db: AsyncSession) -> list[ConversionGoal]:
    return list(
        (await db.scalars(select(ConversionGoal).order_by(ConversionGoal.kind, ConversionGoal.value))).all()
    )


async def session_analytics(
    db: AsyncSession, session: UserSession, goals: Sequence[ConversionGoal] | None = None
) -> SessionAnalytics:
    ev = SessionEvent
    sid = session.id
    active = await active_seconds_sql(db, sid)
    counts: Counter[str] = Counter()
    unique = 0
    for etype, n, distinct_urls in (
        await db.execute(
            select(ev.event_type, func.count(), func.count(func.distinct(ev.page_url)))
            .where(ev.session_id == sid)
            .group_by(ev.event_type)
        )
    ).all():
        counts[etype] = n
        if etype == "navigation":
            unique = distinct_urls
    nav = ev.event_type == "navigation"
    pages = counts.get("navigation", 0) or session.page_views
    if not unique:
        unique = (
            await db.scalar(select(func.count(func.distinct(ev.page_url))).where(ev.session_id == sid))
        ) or 0
    depth = session.max_scroll_depth or 0
    if counts.get("scroll") and not depth:  # ingest keeps the maximum on the session; else read the events
        depth = await max_scroll_from_events(db, sid)
    reached: list[dict[str, Any]] = []
    if goals is None:
        goals = await list_goals(db)
    custom_names: Counter[str] = Counter()
    if counts.get("custom") and any(g.kind == "event" for g in goals):
        for data in (
            await db.scalars(select(ev.event_data).where(ev.session_id == sid, ev.event_type == "custom"))
        ).all():
            name = custom_name(data if isinstance(data, dict) else {})
            if name:
                custom_names[name] += 1
    for goal in goals:
        if goal.kind == "url":
            n = (
                await db.scalar(
                    select(func.count()).where(
                        ev.session_id == sid,
                        nav,
                        ev.page_url.like(f"%{_like_escape(goal.value)}%", escape="\\"),
                    )
                )
            ) or 0
        else:
            n = custom_names.get(goal.value, 0)
        if n:
            reached.append(
                {"kind": goal.kind, "value": goal.value, "label": goal.label or goal.value, "count": n}
            )
    duration = session.duration_seconds or int((session.session_end - session.session_start).total_seconds())
    return SessionAnalytics(
        time_on_site_seconds=max(0, duration),
        active_seconds=active,
        pages=pages,
        unique_pages=unique,
        bounce=max(pages, unique) <= 1,
        conversions=sum(g["count"] for g in reached),
        goals_reached=reached,
        error_count=counts.get("error", 0),
        rage_clicks=counts.get("rage_click", 0),
        dead_clicks=counts.get("dead_click", 0),
        clicks=sum(counts.get(t, 0) for t in CLICK_TYPES),
        max_scroll_depth=depth,
        event_count=sum(counts.values()),
    )


# ---------------------------------------------------------------- customer level


async def customer_sessions(
    db: AsyncSession,
    email: str,
    *,
    min_confidence: float,
    has_notes: bool = False,
    limit: int = 50,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[UserSession, int]]:
    """The customer's sessions newest first, each with its count of (live) notes."""
    notes = (
        select(func.count())
        .where(SessionAnnotation.session_id == UserSession.id, SessionAnnotation.deleted_at.is_(None))
        .correlate(UserSession)
        .scalar_subquery()
    )
    q = select(UserSession, notes).where(customer_sessions_filter(email, min_confidence))
    if has_notes:
        q = q.where(notes > 0)
    if since is not None:
        q = q.where(UserSession.session_end >= since)
    if until is not None:
        q = q.where(UserSession.session_start < until)
    rows = (await db.execute(q.order_by(UserSession.session_start.desc(), UserSession.id).limit(limit))).all()
    return [(s, int(n or 0)) for s, n in rows]


def _day(ts: datetime) -> str:
    return ts.astimezone(UTC).date().isoformat()


async def customer_analytics(db: AsyncSession, email: str, *, min_confidence: float) -> dict[str, Any]:
    rows = await customer_sessions(db, email, min_confidence=min_confidence, limit=1000)
    sessions = [s for s, _ in rows]
    ids = [s.id for s in sessions]
    per_type: dict[uuid.UUID, Counter[str]] = defaultdict(Counter)
    top_pages: list[tuple[str | None, int]] = []
    if ids:
        ev = SessionEvent
        for sid, etype, n in (
            await db.execute(
                select(ev.session_id, ev.event_type, func.count())
                .where(ev.session_id.in_(ids), ev.event_type.in_(("error", "rage_click", "dead_click")))
                .group_by(ev.session_id, ev.event_type)
            )
        ).all():
            per_type[sid][etype] = n
        top_pages = [
            (url, n)
            for url, n in (
                await db.execute(
                    select(ev.page_url, func.count().label("n"))
                    .where(ev.session_id.in_(ids), ev.event_type == "navigation", ev.page_url.is_not(None))
                    .group_by(ev.page_url)
                    .order_by(func.count().desc(), ev.page_url)
                    .limit(10)
                )
            ).all()
        ]
    days: dict[str, dict[str, int]] = {}
    devices: Counter[str] = Counter()
    for s in sorted(sessions, key=lambda s: s.session_start):
        d = days.setdefault(
            _day(s.session_start), {"sessions": 0, "errors": 0, "rageClicks": 0, "deadClicks": 0}
        )
        c = per_type.get(s.id, Counter())
        d["sessions"] += 1
        d["errors"] += c.get("error", s.error_count if not c else 0)
        d["rageClicks"] += c.get("rage_click", s.rage_click_count if not c else 0)
        d["deadClicks"] += c.get("dead_click", s.dead_click_count if not c else 0)
        devices[s.device_type or "unknown"] += 1
    return {
        "sessionCount": len(sessions),
        "days": [{"day": k, **v} for k, v in days.items()],
        "devices": [{"device": k, "sessions": v} for k, v in devices.most_common()],
        "topPages": [{"url": u, "views": n} for u, n in top_pages],
        "totals": {
            "errors": sum(d["errors"] for d in days.values()),
            "rageClicks": sum(d["rageClicks"] for d in days.values()),
            "deadClicks": sum(d["deadClicks"] for d in days.values()),
        },
    }


# ---------------------------------------------------------------- heatmap


async def heatmap(db: AsyncSession, session_ids: Sequence[uuid.UUID], url: str | None) -> dict[str, Any]:
    """Click points of one page over the given sessions; without `url`, the page with most clicks."""
    ev = SessionEvent
    if not session_ids:
        return {"url": url, "pages": [], "points": []}
    where = (ev.session_id.in_(session_ids), ev.event_type.in_(CLICK_TYPES), ev.page_url.is_not(None))
    pages = [
        {"url": u, "clicks": n}
        for u, n in (
            await db.execute(
                select(ev.page_url, func.count())
                .where(*where)
                .group_by(ev.page_url)
                .order_by(func.count().desc(), ev.page_url)
                .limit(50)
            )
        ).all()
    ]
    if url is None and pages:
        url = str(pages[0]["url"])
    if url is None:
        return {"url": None, "pages": pages, "points": []}
    nav_vp: dict[uuid.UUID, tuple[int, int]] = {}
    for sid, data in (
        await db.execute(
            select(ev.session_id, ev.event_data).where(
                ev.session_id.in_(session_ids), ev.event_type == "navigation", ev.page_url == url
            )
        )
    ).all():
        vp = viewport_of(data if isinstance(data, dict) else {})
        if vp:
            nav_vp[sid] = vp
    points = []
    for sid, etype, x, y, data in (
        await db.execute(
            select(ev.session_id, ev.event_type, ev.x, ev.y, ev.event_data)
            .where(*where, ev.page_url == url, ev.x.is_not(None), ev.y.is_not(None))
            .order_by(ev.timestamp)
            .limit(20000)
        )
    ).all():
        w, h = viewport_of(data if isinstance(data, dict) else {}) or nav_vp.get(sid) or DEFAULT_VIEWPORT
        points.append({"x": x, "y": y, "w": w, "h": h, "weight": HEAT_WEIGHT.get(etype, 1.0), "type": etype})
    return {"url": url, "pages": pages, "points": points}


# ---------------------------------------------------------------- export


def csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): text starting with = + - @ tab or CR gets a quote."""
    if isinstance(value, str) and value.startswith(CSV_DANGEROUS):
        return "'" + value
    return value


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell(v) for v in values])
    return buf.getvalue()


EVENT_COLUMNS = ("id", "timestamp", "offset_ms", "type", "page_url", "selector", "x", "y", "text", "message")


def _event_row(ev: SessionEvent, start: datetime) -> dict[str, Any]:
    data = _data(ev)
    return {
        "id": str(ev.id),
        "timestamp": ev.timestamp.isoformat(),
        "offset_ms": offset_ms(ev.timestamp, start),
        "type": ev.event_type,
        "page_url": ev.page_url,
        "selector": ev.element_selector,
        "x": ev.x,
        "y": ev.y,
        "text": _str(data.get("text"), 500) if ev.event_type != "error" else None,
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


# ---------------------------------------------------------------- story

MAX_STORY_EVENTS = 20_000  # a story beyond this says how many events it left untold
# The columns of story.StoryEvent, in its order: the offset in ms computed by PostgreSQL (no datetime
# per row), an error's message chosen here, and each JSON field read only for the event types whose
# step uses it.
STORY_SQL = """
SELECT GREATEST(0, (EXTRACT(EPOCH FROM ("timestamp" - $1::timestamptz)) * 1000)::bigint),
  event_type, left(page_url, 2048),
  CASE WHEN event_type IN ('click', 'rage_click', 'dead_click', 'form_submit')
       THEN left(element_selector, 300) END,
  CASE WHEN event_type IN ('click', 'rage_click', 'dead_click') THEN left(event_data->>'text', 300) END,
  CASE WHEN event_type = 'error'
       THEN left(COALESCE(NULLIF(event_data->>'message', ''), NULLIF(event_data->>'msg', ''),
                          NULLIF(event_data->>'error', ''), NULLIF(event_data->>'text', ''),
                          'JavaScript error'), 300) END,
  CASE WHEN event_type = 'navigation' THEN left(event_data->>'title', 300) END,
  CASE WHEN event_type = 'custom'
       THEN left(COALESCE(event_data->>'name', event_data->>'event', event_data->>'key'), 200) END,
  CASE WHEN event_type = 'scroll'
       THEN left(COALESCE(event_data->>'depth', event_data->>'maxDepth', event_data->>'percent',
                          event_data->>'scrollDepth'), 20) END
FROM session_events WHERE session_id = $2
ORDER BY "timestamp", id
LIMIT $3
"""


def _depth(raw: str | None) -> int | None:
    try:
        return max(0, min(100, int(float(raw)))) if raw is not None else None
    except (ValueError, OverflowError):  # "nan", "inf": a tracker's text, not a depth
        return None


async def story_events(db: AsyncSession, session: UserSession, limit: int = MAX_STORY_EVENTS) -> list[Any]:
    """The session's events as the story reads them, in time order, at most `limit`.

    Read on the request's own connection and transaction, through the driver: 5,000 rows go
    straight from asyncpg's records into `StoryEvent` tuples, without a result row object and a
    Python loop body each, which made the read about a third slower (bench/README.md, "session
    view")."""
    from supportlens.investigation.story import StoryEvent

    conn = await db.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    rows = await driver.fetch(STORY_SQL, session.session_start, session.id, limit)  # type: ignore[union-attr]
    make = StoryEvent._make
    return [make(r) if r[8] is None else make((*r[:8], _depth(r[8]))) for r in rows]
