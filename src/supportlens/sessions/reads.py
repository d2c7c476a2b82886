"""Queries behind the session page, the customer pages, comparisons and session notes: sessions, a
customer's sessions, events, timeline windows (analytics and heatmaps: `analytics.py`; the story's read
and exports are the pages' own, in `investigation/`).

Everything here reads user_sessions / session_events / session_annotations / session_customer_mapping
directly and pages through events with a keyset on (timestamp, id), so a session of any size is served
in bounded windows and exports stream without loading all rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.customers.emails import InvalidEmail, canonical_email
from supportlens.db.base import utcnow
from supportlens.integrations.clarity.urls import heatmaps_url
from supportlens.params import bounded_instant
from supportlens.problems import ProblemError
from supportlens.sessions.models import SessionCustomerMapping, SessionEvent, UserSession
from supportlens.web.viewer import Fields, Pii

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MARKER_TYPES = ("navigation", "error", "rage_click", "dead_click")
MAX_MARKERS = 2000
DEFAULT_VIEWPORT = (1280, 800)


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


# What a viewer sees of a session and of its events (web/viewer.py masks these where the answer is
# serialised): URLs and event texts with their e-mails, phones and cards masked, no recording link.
SESSION_FIELDS: Fields = {
    "entryUrl": Pii.text,
    "exitUrl": Pii.text,
    "recordingUrl": Pii.withheld,
    "customerEmail": Pii.email,
}
EVENT_FIELDS: Fields = {"url": Pii.text, "text": Pii.text, "msg": Pii.text, "title": Pii.text}


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


def session_dict(session: UserSession, customer: dict[str, Any] | None, settings: Settings) -> dict[str, Any]:
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
        "entryUrl": session.entry_url,
        "exitUrl": session.exit_url,
        "recordingUrl": rec["url"],
        "hasRecording": rec["available"],
        "recordingExpiresAt": rec["expiresAt"],
        "customerEmail": email or None,
        "mapping": customer and {k: customer[k] for k in ("method", "confidence")},
    }


# ---------------------------------------------------------------- events


def event_data(ev: SessionEvent) -> dict[str, Any]:
    return ev.event_data if isinstance(ev.event_data, dict) else {}


def bounded_text(value: Any, limit: int = 500) -> str | None:
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
    return bounded_text(data.get("message") or data.get("msg") or data.get("error") or data.get("text"))


def custom_name(data: dict[str, Any]) -> str | None:
    return bounded_text(data.get("name") or data.get("event") or data.get("key"), 200)


def scroll_depth(data: dict[str, Any]) -> int | None:
    for key in ("depth", "maxDepth", "percent", "scrollDepth"):
        value = data.get(key)
        if isinstance(value, int | float):
            return max(0, min(100, int(value)))
    return None


def offset_ms(ts: datetime, start: datetime) -> int:
    return max(0, int((ts - start).total_seconds() * 1000))


def event_json(ev: SessionEvent, start: datetime) -> dict[str, Any]:
    data = event_data(ev)
    out: dict[str, Any] = {
        "id": str(ev.id),
        "t": offset_ms(ev.timestamp, start),
        "ts": ev.timestamp.isoformat(),
        "type": ev.event_type,
        "url": ev.page_url,
        "c": encode_cursor(ev.timestamp, ev.id),
    }
    if ev.element_selector:
        out["sel"] = bounded_text(ev.element_selector, 300)
    if ev.x is not None and ev.y is not None:
        out["x"], out["y"] = ev.x, ev.y
    text = bounded_text(data.get("text"), 200)
    if text and ev.event_type != "error":
        out["text"] = text
    if ev.event_type == "error":
        out["msg"] = error_message(data) or "JavaScript error"
    title = bounded_text(data.get("title"), 300)
    if title:
        out["title"] = title
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
    events = [event_json(r, session.session_start) for r in rows]
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    return {
        "sessionId": str(session.id),
        "events": events,
        "next": encode_cursor(last.timestamp, last.id) if last and (more or descending) else None,
        "prev": encode_cursor(first.timestamp, first.id)
        if first and (more if descending else bool(after or from_ms))
        else None,
    }


async def markers(db: AsyncSession, session: UserSession) -> list[dict[str, Any]]:
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
    return [event_json(r, session.session_start) for r in rows]
