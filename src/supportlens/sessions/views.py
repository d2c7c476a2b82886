"""HTTP for agents: the sessions API (`/api/clarity/sessions…`, a documented contract), the Sessions panel."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from supportlens.audit import service as audit
from supportlens.auth.deps import AgentPrincipal, CurrentPrincipal, DbDep, Principal, SettingsDep
from supportlens.config import Settings
from supportlens.customers.emails import canonical_email_or_none
from supportlens.params import OptionalDay, OptionalInstant, decodes_with
from supportlens.problems import ProblemError
from supportlens.sessions import service
from supportlens.sessions.possible import heading
from supportlens.sessions.schemas import (
    EventPage,
    PossibleSessions,
    RecordingInfo,
    SessionDetail,
    SessionPage,
    SessionSummary,
)
from supportlens.web import viewer
from supportlens.web.pages import render

router = APIRouter(tags=["sessions"])


# ---- agents: sessions API --------------------------------------------------------------------------


async def _page(
    db: DbDep,
    settings: Settings,
    customer: str,
    limit: int,
    before: str | None,
    min_confidence: float | None,
) -> tuple[list[SessionSummary], str | None]:
    try:
        return await service.sessions_page(
            db, customer, settings, limit=limit, before=before, min_confidence=min_confidence
        )
    except service.BadCursor as exc:
        raise ProblemError(400, "Invalid cursor", str(exc), field="before") from exc


# The `nextCursor` of an earlier page, checked before the handler runs.
SessionsCursor = Annotated[str, decodes_with(service.decode_cursor)]
CustomerQ = Annotated[str, Query(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


@router.get("/api/clarity/sessions", response_model=SessionPage, response_model_by_alias=True)
async def list_sessions(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    customer: CustomerQ,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    before: Annotated[SessionsCursor | None, Query(max_length=200)] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    include: Annotated[
        Literal["possible"] | None, Query(description="possible: add possible sessions")
    ] = None,
) -> JSONResponse:
    """A customer's sessions, newest first; `before` is the previous page's `nextCursor`.

    `include=possible` adds, on the first page, the customer's possible sessions: links scored below
    the threshold (`min_confidence` or the setting) down to the possible floor, undecided."""
    items, cursor = await _page(db, settings, customer, limit, before, min_confidence)
    possible = None
    detail: dict[str, Any] = {"count": len(items)}
    if include == "possible" and before is None:
        found, more = await service.possible_sessions(
            db,
            customer,
            settings,
            floor=settings.possible_floor,
            threshold=settings.mapping_min_confidence if min_confidence is None else min_confidence,
        )
        possible = PossibleSessions(items=found, more=more)
        detail["possible"] = len(found)
    await _audit_listed(db, request, principal, customer, detail, settings)
    return viewer.respond(SessionPage(items=items, next_cursor=cursor, possible=possible), principal)


async def _session_or_404(db: DbDep, session_id: uuid.UUID) -> Any:
    session = await service.get_session(db, session_id)
    if session is None:
        raise ProblemError(404, "Session not found", field="id")
    return session


@router.get("/api/clarity/sessions/{session_id}", response_model=SessionDetail, response_model_by_alias=True)
async def get_session(
    request: Request, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal, session_id: uuid.UUID
) -> JSONResponse:
    session = await _session_or_404(db, session_id)
    mapping = await service.best_mapping(db, session)
    item = service.detail(session, mapping, retention_days=settings.recording_retention_days)
    await audit.record_session(
        db, "session_viewed", session, settings=settings, request=request, actor=principal.agent
    )
    return viewer.respond(item, principal)


@router.get(
    "/api/clarity/sessions/{session_id}/events", response_model=EventPage, response_model_by_alias=True
)
async def session_events(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    session_id: uuid.UUID,
    after: OptionalInstant = None,
    after_id: Annotated[uuid.UUID | None, Query(alias="afterId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EventPage:
    """Events in time order; continue with `?after=<nextAfter>&afterId=<nextAfterId>`."""
    session = await _session_or_404(db, session_id)
    page = await service.list_events(db, session.id, after=after, after_id=after_id, limit=limit)
    await audit.record_session(
        db,
        "session_events_viewed",
        session,
        settings=settings,
        request=request,
        actor=principal.agent,
        count=len(page.items),
    )
    return page


@router.get(
    "/api/clarity/sessions/{session_id}/recording", response_model=RecordingInfo, response_model_by_alias=True
)
async def session_recording(
    request: Request, db: DbDep, settings: SettingsDep, principal: AgentPrincipal, session_id: uuid.UUID
) -> RecordingInfo:
    """The Clarity recording link, whether Clarity still keeps it, and until when (viewers: 403)."""
    session = await _session_or_404(db, session_id)
    info = service.recording(session, settings.recording_retention_days)
    await audit.record_session(
        db, "session_recording_viewed", session, settings=settings, request=request, actor=principal.agent
    )
    return info


# ---- agents: the Sessions panel fragment -----------------------------------------------------------


async def _customer_from_q(q: str) -> str | None:
    try:
        from supportlens.customers.query import parse_query

        parsed = parse_query(q)
    except Exception:
        return None
    return parsed.email


SessionSort = Literal["newest", "oldest", "confidence", "signals"]  # sessions.service.SORTS
SignalFilter = Literal["any", "trouble", "errors", "rage", "dead", "calm"]  # service.SIGNAL_FILTERS
PANEL_PAGE = 8


@router.get("/partials/sessions", response_class=HTMLResponse, include_in_schema=False)
async def sessions_panel(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    customer: Annotated[str, Query(max_length=254)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    before: Annotated[SessionsCursor | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = PANEL_PAGE,
    sort: SessionSort = "newest",
    signals: SignalFilter = "any",
    confidence: Annotated[int, Query(ge=0, le=100, description="lowest link confidence, percent")] = 0,
    from_: Annotated[OptionalDay, Query(alias="from")] = None,
    to: OptionalDay = None,
    offset: Annotated[int, Query(ge=0, le=service.FILTER_WINDOW)] = 0,
) -> HTMLResponse:
    """The Sessions panel: compact rows newest first ("Show more" pages by cursor), or sorted and
    filtered by confidence, signals and date among the customer's newest sessions (paged by offset)."""
    email = canonical_email_or_none(customer) or (await _customer_from_q(q) if q else None)
    items: list[SessionSummary] = []
    # Below the list, collapsed: links under the threshold down to the possible floor (first page only).
    possible: list[SessionSummary] = []
    possible_more = window_full = False
    cursor = next_offset = None
    since, until = _day_range(from_, to)
    filtered = sort != "newest" or signals != "any" or confidence > 0 or since or until or offset
    if email and "@" in email:
        if filtered:
            items, next_offset, window_full = await service.filtered_sessions(
                db,
                email,
                settings,
                sort=sort,
                signals=signals,
                min_confidence=confidence / 100,
                since=since,
                until=until,
                offset=offset,
                limit=limit,
            )
        else:
            items, cursor = await _page(db, settings, email, limit, before, None)
            if before is None:
                possible, possible_more = await service.possible_sessions(db, email, settings)
        await _audit_listing(
            request, db, settings, principal, email, len(items), len(possible), sort, signals
        )
    elif q:
        from supportlens.customers.query import parse_query

        try:
            items = await service.search_sessions(db, parse_query(q), settings, limit=limit)
        except ProblemError:
            items = []
    filters: dict[str, Any] = {"sort": sort, "signals": signals, "confidence": confidence}
    filters |= {"from": from_.isoformat() if from_ else "", "to": to.isoformat() if to else ""}
    return render(
        request,
        "sessions/_panel.html",
        {
            "sessions": items,
            "customer": email or "",
            "q": q,
            "next_cursor": cursor,
            "next_offset": next_offset,
            "window_full": window_full,
            "window": service.FILTER_WINDOW,
            "filtered": bool(filtered),
            "filters": filters,
            "limit": limit,
            "more_only": before is not None or offset > 0,
            "can_open_recordings": not viewer.is_viewer(principal),
            "possible": possible,
            "possible_heading": heading(
                len(possible), (e.method for i in possible for e in i.mapping.evidence), more=possible_more
            ),
        },
    )


async def _audit_listing(
    request: Request,
    db: DbDep,
    settings: Settings,
    principal: Principal,
    email: str,
    count: int,
    possible: int,
    sort: str,
    signals: str,
) -> None:
    """The panel's read of a customer's sessions, audited (the customer as a keyed reference)."""
    detail: dict[str, Any] = {"count": count, "via": "panel", "sort": sort, "signals": signals}
    if possible:
        detail["possible"] = possible
    await _audit_listed(db, request, principal, email, detail, settings)


def _day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    end = datetime.combine(until, time.min, tzinfo=UTC) + timedelta(days=1) if until else None
    if start and end and end <= start:
        raise ProblemError(400, "Invalid dates", "`to` is before `from`", field="to")
    return start, end


async def _audit_listed(
    db: DbDep,
    request: Request,
    principal: Principal,
    customer: str,
    detail: dict[str, Any],
    settings: Settings,
) -> None:
    """A customer's sessions were listed (the API or the panel; `detail` says which and how)."""
    await audit.record(
        db,
        "sessions_listed",
        request=request,
        actor=principal.agent,
        target_type="customer",
        target=audit.customer_ref(customer, settings),
        detail=detail,
    )
