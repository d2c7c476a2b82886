"""Reading sessions: a customer's sessions (via session_customer_mapping), one session, its events."""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.customers.emails import canonical_email_or_none
from supportlens.db.base import utcnow
from supportlens.params import bounded_instant
from supportlens.sessions.models import SessionCustomerMapping, SessionEvent, UserSession
from supportlens.sessions.possible import POSSIBLE_LIMIT
from supportlens.sessions.schemas import (
    EventOut,
    EventPage,
    Evidence,
    MappingInfo,
    RecordingInfo,
    SessionDetail,
    SessionSummary,
    Signals,
)

if TYPE_CHECKING:
    from supportlens.customers.query import SearchQuery

MAX_LIMIT = 100
SIGNED_IN_REASON = "the site said this customer was signed in during the session"


class BadCursor(ValueError):
    pass


def encode_cursor(start: datetime, session_id: uuid.UUID) -> str:
    raw = f"{start.isoformat()}|{session_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, sid = raw.partition("|")
        return bounded_instant(datetime.fromisoformat(ts)), uuid.UUID(sid)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor from this API") from exc


def _mapping_info(session: UserSession, row: SessionCustomerMapping | None) -> MappingInfo:
    if row is not None:
        evidence = []
        for item in row.evidence or []:
            try:
                evidence.append(
                    Evidence(
                        method=str(item.get("method", "")),
                        score=float(item.get("score", 0)),
                        reason=str(item.get("reason", "")),
                    )
                )
            except (TypeError, ValueError, AttributeError):
                continue
        return MappingInfo(
            customer_email=row.customer_email,
            method=row.mapping_method,
            confidence=row.confidence_score,
            evidence=evidence,
        )
    if session.customer_email:
        # The site named the signed-in customer; the mapping engine records the same as email_match 1.00.
        return MappingInfo(
            customer_email=session.customer_email,
            method="email_match",
            confidence=1.0,
            evidence=[Evidence(method="email_match", score=1.0, reason=SIGNED_IN_REASON)],
        )
    return MappingInfo()


def summary(
    session: UserSession,
    mapping: SessionCustomerMapping | None = None,
    *,
    retention_days: int,
    now: datetime | None = None,
) -> SessionSummary:
    expires = session.session_start + timedelta(days=retention_days)  # Clarity keeps recordings so long
    return SessionSummary(
        id=session.id,
        clarity_session_id=session.clarity_session_id,
        clarity_user_id=session.clarity_user_id,
        clarity_project_id=session.clarity_project_id,
        session_start=session.session_start,
        session_end=session.session_end,
        duration_seconds=session.duration_seconds,
        page_views=session.page_views,
        device_type=session.device_type,
        browser=session.browser,
        os=session.os,
        entry_url=session.entry_url,
        exit_url=session.exit_url,
        recording_url=session.recording_url,
        has_recording=(now or utcnow()) < expires,
        recording_expires_at=expires,
        mapping=_mapping_info(session, mapping),
        signals=Signals(
            clicks=session.click_count,
            errors=session.error_count,
            rage_clicks=session.rage_click_count,
            dead_clicks=session.dead_click_count,
            max_scroll_depth=session.max_scroll_depth,
        ),
    )


def detail(
    session: UserSession, mapping: SessionCustomerMapping | None, *, retention_days: int
) -> SessionDetail:
    base = summary(session, mapping, retention_days=retention_days)
    return SessionDetail(
        **base.model_dump(),
        customer_email=session.customer_email,
        customer_name=session.customer_name,
        event_count=session.event_count,
        client_ip=session.client_ip,
        user_agent=session.user_agent,
    )


# Lower bound for "no cut-off" (every real session starts after it).
_NO_CUTOFF = datetime(1, 1, 2, tzinfo=UTC)


@functools.cache
def _page_statement(with_cursor: bool) -> Select[UserSession, SessionCustomerMapping]:
    """One page of a customer's sessions as the union of index-driven parts, newest first.

    A session is listed when the customer has a link to it (confidence at or above the threshold,
    or linked by hand) that no agent unlinked, or when the site named that customer on the session
    and there is no link row at all for that customer (a link row, even a weak or unlinked one, has
    the last word). Each part reads at most a page (+1) from its own index:
    - linked: the links' (customer_email, session_start, session_id) index, newest first;
    - linked rows whose copied start is still empty (none while the triggers keep it), by joining;
    - named: user_sessions' (lower(customer_email), session_start) index, not older than the
      page's last linked row when the linked part alone fills a page.
    Built once (per cursor / no cursor) with bound parameters: email, threshold, limit, n (= limit + 1),
    no_cutoff, and ts/sid for the cursor.
    """
    m = SessionCustomerMapping
    s = UserSession
    email = bindparam("email", type_=String())
    n = bindparam("n", type_=Integer())
    keep = and_(
        or_(m.manual_decision.is_(None), m.manual_decision != "unlink"),
        or_(m.confidence_score >= bindparam("threshold", type_=Float()), m.manual_decision == "link"),
    )
    key = tuple_(bindparam("ts", type_=s.session_start.type), bindparam("sid", type_=s.id.type))

    linked = select(m.session_id.label("sid"), m.session_start.label("start")).where(
        m.customer_email == email, keep, m.session_start.is_not(None)
    )
    if with_cursor:
        linked = linked.where(tuple_(m.session_start, m.session_id) < key)
    linked_cte = linked.order_by(m.session_start.desc(), m.session_id.desc()).limit(n).cte("linked")

    unfilled = (
        select(m.session_id.label("sid"), s.session_start.label("start"))
        .join(s, s.id == m.session_id)
        .where(m.customer_email == email, keep, m.session_start.is_(None))
    )
    if with_cursor:
        unfilled = unfilled.where(tuple_(s.session_start, s.id) < key)
    unfilled_cte = unfilled.order_by(s.session_start.desc(), s.id.desc()).limit(n).cte("unfilled")

    # the linked part's (limit + 1)-th row, if it has one: nothing older can make this page
    cutoff = (
        select(linked_cte.c.start)
        .order_by(linked_cte.c.start.desc(), linked_cte.c.sid.desc())
        .offset(bindparam("limit", type_=Integer()))
        .limit(1)
        .scalar_subquery()
    )
    named = select(s.id.label("sid"), s.session_start.label("start")).where(
        func.lower(s.customer_email) == email,
        s.automated.is_(None),  # automated traffic is never a customer's, even signed in
        ~exists().where(m.session_id == s.id, m.customer_email == email),
        s.session_start >= func.coalesce(cutoff, bindparam("no_cutoff", type_=s.session_start.type)),
    )
    if with_cursor:
        named = named.where(tuple_(s.session_start, s.id) < key)
    named_cte = named.order_by(s.session_start.desc(), s.id.desc()).limit(n).cte("named")

    page = union_all(
        select(linked_cte.c.sid),
        select(unfilled_cte.c.sid),
        select(named_cte.c.sid),
    ).subquery("page")
    return (
        select(s, m)
        .join(page, page.c.sid == s.id)
        .outerjoin(m, and_(m.session_id == s.id, m.customer_email == email))
        .order_by(s.session_start.desc(), s.id.desc())
        .limit(n)
    )


async def sessions_page(
    db: AsyncSession,
    email: str,
    settings: Settings,
    *,
    limit: int = 10,
    before: str | None = None,
    min_confidence: float | None = None,
) -> tuple[list[SessionSummary], str | None]:
    """A customer's sessions, newest first, with a cursor for the next page (None at the end)."""
    canonical = canonical_email_or_none(email)
    if canonical is None:
        return [], None
    email = canonical
    limit = max(1, min(limit, MAX_LIMIT))
    threshold = settings.mapping_min_confidence if min_confidence is None else min_confidence
    params: dict[str, Any] = {
        "email": email,
        "threshold": threshold,
        "limit": limit,
        "n": limit + 1,
        "no_cutoff": _NO_CUTOFF,
    }
    if before:
        params["ts"], params["sid"] = decode_cursor(before)
    rows = (await db.execute(_page_statement(bool(before)), params)).all()
    retention = settings.recording_retention_days
    now = utcnow()
    items = [summary(row[0], row[1], retention_days=retention, now=now) for row in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        cursor = encode_cursor(last.session_start, last.id)
    return items, cursor


async def sessions_for_customer(
    db: AsyncSession,
    email: str,
    settings: Settings,
    *,
    limit: int = 10,
    before: str | None = None,
    min_confidence: float | None = None,
) -> list[SessionSummary]:
    """Contract for other domains: the customer's sessions, newest first."""
    items, _ = await sessions_page(
        db, email, settings, limit=limit, before=before, min_confidence=min_confidence
    )
    return items


async def possible_sessions(
    db: AsyncSession,
    email: str,
    settings: Settings,
    *,
    floor: float | None = None,
    threshold: float | None = None,
    limit: int = POSSIBLE_LIMIT,
) -> tuple[list[SessionSummary], bool]:
    """The customer's possible sessions (sessions/possible.py), newest first, and whether there are more.

    Undecided links in [floor, threshold) of human sessions: one range scan of the links'
    (customer_email, confidence_score) index, then the band's rows sorted. The band is a MATERIALIZED
    CTE: otherwise, for a customer with many links, PostgreSQL may walk every session newest first and
    probe its links until the page fills (0.7 s at 214,000 sessions in bench/possible.py)."""
    canonical = canonical_email_or_none(email)
    floor = settings.possible_floor if floor is None else floor
    threshold = settings.mapping_min_confidence if threshold is None else threshold
    if canonical is None or floor >= threshold:
        return [], False
    m, s = SessionCustomerMapping, UserSession
    band = (
        select(m.id.label("link_id"), m.session_id)
        .where(
            m.customer_email == canonical,
            m.manual_decision.is_(None),
            m.confidence_score >= floor,
            m.confidence_score < threshold,
        )
        .cte("band")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        select(s, m)
        .join(band, band.c.session_id == s.id)
        .join(m, m.id == band.c.link_id)
        .where(s.automated.is_(None))  # automated traffic is never a customer's, not even possibly
        .order_by(s.session_start.desc(), s.id.desc())
        .limit(limit + 1)
    )
    rows = (await db.execute(stmt)).all()
    retention = settings.recording_retention_days
    now = utcnow()
    items = [summary(row[0], row[1], retention_days=retention, now=now) for row in rows[:limit]]
    return items, len(rows) > limit


# The Sessions panel's sort and filters. They work on the customer's newest FILTER_WINDOW sessions (in
# the date range when one is given): a bounded read whatever the customer's history, paged by offset.
SORTS = ("newest", "oldest", "confidence", "signals")
SIGNAL_FILTERS = ("any", "trouble", "errors", "rage", "dead", "calm")
FILTER_WINDOW = 200
_LAST_ID = uuid.UUID(int=(1 << 128) - 1)


def _trouble(item: SessionSummary) -> int:
    sig = item.signals
    return sig.errors + sig.rage_clicks + sig.dead_clicks


def _signal_kept(item: SessionSummary, signals: str) -> bool:
    sig = item.signals
    return {
        "any": True,
        "trouble": _trouble(item) > 0,
        "errors": sig.errors > 0,
        "rage": sig.rage_clicks > 0,
        "dead": sig.dead_clicks > 0,
        "calm": _trouble(item) == 0,
    }[signals]


def sort_and_filter(
    items: list[SessionSummary],
    *,
    sort: str = "newest",
    signals: str = "any",
    min_confidence: float = 0.0,
) -> list[SessionSummary]:
    """Pure: the sessions kept by the filters, in the chosen order (ties newest first)."""
    kept = [
        i
        for i in items
        if _signal_kept(i, signals) and (i.mapping.confidence or 0.0) >= min_confidence - 1e-9
    ]
    kept.sort(key=lambda i: (i.session_start, str(i.id)), reverse=True)
    if sort == "oldest":
        kept.reverse()
    elif sort == "confidence":
        kept.sort(key=lambda i: i.mapping.confidence or 0.0, reverse=True)
    elif sort == "signals":
        kept.sort(key=lambda i: (_trouble(i), i.signals.errors), reverse=True)
    return kept


async def filtered_sessions(
    db: AsyncSession,
    email: str,
    settings: Settings,
    *,
    sort: str = "newest",
    signals: str = "any",
    min_confidence: float = 0.0,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 10,
) -> tuple[list[SessionSummary], int | None, bool]:
    """One page of the customer's sessions sorted and filtered among the newest FILTER_WINDOW in
    [since, until). Returns (items, the next page's offset or None, whether the window was full)."""
    window: list[SessionSummary] = []
    cursor = encode_cursor(until, _LAST_ID) if until else None
    while len(window) < FILTER_WINDOW:
        page, cursor = await sessions_page(
            db, email, settings, limit=min(MAX_LIMIT, FILTER_WINDOW - len(window)), before=cursor
        )
        window.extend(i for i in page if since is None or i.session_start >= since)
        if cursor is None or (since is not None and page and page[-1].session_start < since):
            break
    full = len(window) >= FILTER_WINDOW and cursor is not None
    kept = sort_and_filter(window, sort=sort, signals=signals, min_confidence=min_confidence)
    end = offset + limit
    return kept[offset:end], (end if end < len(kept) else None), full


def finds_sessions(query: SearchQuery) -> bool:
    """Whether `search_sessions` can find anything for the query: a phone number (sessions keep no
    phone) or a one-letter name never does, so the search page asks the database nothing for it."""
    return bool(query.email) or (query.kind in ("name", "company") and len(query.text.strip()) >= 2)


async def search_sessions(
    db: AsyncSession, query: SearchQuery, settings: Settings, limit: int = 10
) -> list[SessionSummary]:
    """Sessions for the search page: by e-mail through the mapping, by name through identified sessions."""
    if query.email:
        return await sessions_for_customer(db, query.email, settings, limit=limit)
    if finds_sessions(query):
        pattern = "%" + query.text.strip().lower().replace("%", "").replace("_", "") + "%"
        stmt = (
            select(UserSession)
            .where(func.lower(UserSession.customer_name).like(pattern))
            .order_by(UserSession.session_start.desc())
            .limit(max(1, min(limit, MAX_LIMIT)))
        )
        retention = settings.recording_retention_days
        return [summary(s, retention_days=retention) for s in (await db.scalars(stmt)).all()]
    return []


async def get_session(db: AsyncSession, session_id: uuid.UUID) -> UserSession | None:
    return await db.get(UserSession, session_id)


async def best_mapping(db: AsyncSession, session: UserSession) -> SessionCustomerMapping | None:
    """The strongest link of a session that no agent has unlinked."""
    m = SessionCustomerMapping
    stmt = (
        select(m)
        .where(m.session_id == session.id, or_(m.manual_decision.is_(None), m.manual_decision != "unlink"))
        .order_by((m.manual_decision == "link").desc(), m.confidence_score.desc())
        .limit(1)
    )
    return await db.scalar(stmt)


async def list_events(
    db: AsyncSession,
    session_id: uuid.UUID,
    *,
    after: datetime | None = None,
    after_id: uuid.UUID | None = None,
    limit: int = 200,
) -> EventPage:
    """Events in time order, `limit` at a time; pass the page's nextAfter/nextAfterId to continue."""
    limit = max(1, min(limit, 1000))
    e = SessionEvent
    stmt = select(e).where(e.session_id == session_id)
    if after is not None:
        if after_id is not None:
            stmt = stmt.where(or_(e.timestamp > after, and_(e.timestamp == after, e.id > after_id)))
        else:
            stmt = stmt.where(e.timestamp > after)
    stmt = stmt.order_by(e.timestamp, e.id).limit(limit + 1)
    rows = list((await db.scalars(stmt)).all())
    items = [
        EventOut(
            id=r.id,
            type=r.event_type,
            timestamp=r.timestamp,
            url=r.page_url,
            selector=r.element_selector,
            x=r.x,
            y=r.y,
            data=r.event_data or {},
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return EventPage(
        items=items,
        next_after=items[-1].timestamp if more else None,
        next_after_id=items[-1].id if more else None,
    )


def recording(session: UserSession, retention_days: int) -> RecordingInfo:
    expires = session.session_start + timedelta(days=retention_days)
    available = utcnow() < expires
    return RecordingInfo(url=session.recording_url, available=available, expires_at=expires)
