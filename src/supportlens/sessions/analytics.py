"""Analytics of a session and of a customer (active time, scroll, conversions), and click heatmaps."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import SessionAnnotation, SessionEvent, UserSession
from supportlens.sessions.reads import (
    DEFAULT_VIEWPORT,
    custom_name,
    customer_sessions_filter,
    scroll_depth,
    viewport_of,
)

ACTIVE_GAP_SECONDS = 30
CLICK_TYPES = ("click", "rage_click", "dead_click")
HEAT_WEIGHT = {"click": 1.0, "dead_click": 2.0, "rage_click": 3.0}


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
