"""Session view, customer journey and analytics pages, and their JSON APIs (all audited)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from supportlens.audit import service as audit
from supportlens.auth.deps import (
    AdminPrincipal,
    AgentPrincipal,
    CurrentPrincipal,
    DbDep,
    Principal,
    SettingsDep,
)
from supportlens.investigation import annotations as notes
from supportlens.investigation import journey as journey_mod
from supportlens.investigation import service as svc
from supportlens.investigation import story as story_mod
from supportlens.investigation.models import GOAL_KINDS, ConversionGoal
from supportlens.issues.reads import only_them_of_events, only_them_of_session
from supportlens.params import OptionalDay, decodes_with
from supportlens.privacy.masking import mask_email
from supportlens.problems import ProblemError
from supportlens.sessions.models import UserSession
from supportlens.web.pages import render

router = APIRouter(tags=["investigation"])
pages = APIRouter(include_in_schema=False)

SessionId = Annotated[uuid.UUID, "session id"]
ExportFormat = Literal["json", "csv"]
WINDOW_MAX = 500
# The `next` / `prev` of an earlier window, checked before the handler runs.
TimelineCursor = Annotated[str, decodes_with(svc.parse_cursor)]


def _site_context(db: Any, urls: list[str], project_id: str | None) -> Any:
    try:
        from supportlens.insights.site_context import site_context
    except ImportError:
        return None
    return site_context(db, urls, project_id=project_id or None)


async def _session_context(
    request: Request, db: DbDep, settings: Any, principal: Principal, session_id: uuid.UUID, t: int | None
) -> dict[str, Any]:
    session = await svc.get_session(db, session_id)
    viewer = svc.is_viewer(principal)

    # Small indexed reads, one after another on this request's connection: under load, five pool
    # checkouts and transactions per page cost more than the waits they overlap.
    customer = await svc.customer_of(db, session, settings.mapping_min_confidence)
    analytics = await svc.session_analytics(db, session, await svc.list_goals(db))
    marks = await svc.markers(db, session, viewer=viewer)
    first = await svc.timeline_window(db, session, limit=100, viewer=viewer)
    annotations = await notes.list_for_session(db, session)
    session_issues = await only_them_of_session(
        db,
        session.id,
        [customer["email"]] if customer else [],
        min_confidence=settings.mapping_min_confidence,
    )
    site_ctx = None
    urls = sorted({m["url"] for m in marks if m["type"] == "navigation" and m.get("url")})
    pending = _site_context(db, urls, session.clarity_project_id)
    if pending is not None:
        try:
            site_ctx = await pending
        except Exception:  # the Clarity context is optional enrichment, never blocks the view
            await db.rollback()
            site_ctx = None
    at: dict[str, Any] = {"t": t} if t else {}
    await audit.record_session(db, "session_viewed", session, request=request, actor=principal.agent, **at)
    summary = svc.session_dict(session, customer, settings, viewer=viewer)
    duration_ms = max(
        svc.offset_ms(session.session_end, session.session_start),
        max((m["t"] for m in marks), default=0),
        first["events"][-1]["t"] if first["events"] else 0,
    )
    story = story_mod.build_story(await svc.story_events(db, session), duration_ms=duration_ms, focus_ms=t)
    if viewer:
        from supportlens.privacy.masking import mask_pii_text

        story_mod.mask_story(story, mask_pii_text)
    clarity = await _clarity_figures(db, settings, session, analytics)
    player = {
        "sessionId": str(session.id),
        "durationMs": duration_ms,
        "startTs": session.session_start.isoformat(),
        "start": t or 0,
        "eventsUrl": f"/api/clarity/sessions/{session.id}/timeline",
        "annotateUrl": f"/api/clarity/sessions/{session.id}/annotate",
        "annotationsUrl": f"/api/clarity/sessions/{session.id}/annotations",
        "canAnnotate": principal.has_role(_agent_role()),
        "agentId": str(principal.agent.id),
        "isAdmin": principal.agent.role == "admin",
        "markers": marks,
        "firstWindow": first,
        "annotations": annotations,
        "viewport": _first_viewport(marks, session.device_type),
    }
    return {
        "s": session,
        "summary": summary,
        "customer": customer,
        "customer_display": (mask_email(customer["email"]) if viewer else customer["email"])
        if customer
        else None,
        "analytics": analytics,
        "recording": svc.recording_status(session, settings),
        "player": player,
        "heat_clarity_url": svc.clarity_heatmap_url(session, settings),
        "can_export": not viewer,
        "viewer": viewer,
        "site_context": site_ctx,
        "has_site_context": site_ctx is not None,
        "story": story,
        "untold": max(0, session.event_count - story.events) if story.events >= svc.MAX_STORY_EVENTS else 0,
        "clarity": clarity,
        "session_issues": session_issues,
    }


async def _clarity_figures(db: Any, settings: Any, session: UserSession, analytics: Any) -> Any:
    """Clarity's own figures for the session; a failing read of the connection never blocks the page."""
    from supportlens.insights.session_view import connection_of, session_figures

    ours = {
        "rage_clicks": analytics.rage_clicks,
        "dead_clicks": analytics.dead_clicks,
        "error_count": analytics.error_count,
    }
    conn = None
    if settings.clarity_recordings_enabled:
        try:
            conn = await connection_of(db, settings.clarity_project_id)
        except Exception:  # enrichment only: the page shows ours without it
            await db.rollback()
    return session_figures(
        session.clarity_data, ours, enabled=settings.clarity_recordings_enabled, connection=conn
    )


def _agent_role() -> Any:
    from supportlens.auth.models import Role

    return Role.agent


DEVICE_VIEWPORTS = {"mobile": (390, 844), "tablet": (820, 1180)}


def _first_viewport(marks: list[dict[str, Any]], device: str | None) -> dict[str, int]:
    """The page's viewport when the events carry it, else a typical one for the device type."""
    for m in marks:
        if m.get("vw"):
            return {"w": m["vw"], "h": m["vh"]}
    w, h = DEVICE_VIEWPORTS.get(device or "", svc.DEFAULT_VIEWPORT)
    return {"w": w, "h": h}


@pages.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    t: Annotated[int | None, Query(ge=0, le=7 * 24 * 3600 * 1000)] = None,
) -> HTMLResponse:
    """The shareable session view; `?t=` opens the player at that offset (ms from the session start)."""
    ctx = await _session_context(request, db, settings, principal, session_id, t)
    return render(request, "investigation/session.html", ctx)


@pages.get("/sessions/{session_id}/panel", response_class=HTMLResponse)
async def session_panel(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    t: Annotated[int | None, Query(ge=0, le=7 * 24 * 3600 * 1000)] = None,
) -> HTMLResponse:
    """The same view as an HTML fragment (no page chrome) for a <dialog> on the search page."""
    ctx = await _session_context(request, db, settings, principal, session_id, t)
    ctx["in_panel"] = True
    return render(request, "investigation/_session_panel.html", ctx)


# ---------------------------------------------------------------- session APIs


async def _audited_session(
    request: Request, db: DbDep, principal: Principal, session_id: uuid.UUID, action: str, **detail: Any
) -> UserSession:
    session = await svc.get_session(db, session_id)
    await audit.record_session(
        db, action, session, request=request, actor=principal.agent, commit=False, **detail
    )
    return session


@router.get("/api/clarity/sessions/{session_id}/timeline")
async def session_timeline(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    principal: CurrentPrincipal,
    from_ms: Annotated[int | None, Query(ge=0, le=7 * 24 * 3600 * 1000)] = None,
    after: Annotated[TimelineCursor | None, Query(max_length=80)] = None,
    before: Annotated[TimelineCursor | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=WINDOW_MAX)] = 200,
) -> dict[str, Any]:
    """One window of the session's events for the player, ordered by time (keyset paged).

    `from_ms`: events at or after this offset; `after` / `before`: the `next` / `prev` cursor of an
    earlier answer. Each event: id, t (ms from the session start), ts, type, url, sel, x, y, text,
    msg (errors), title, vw/vh (viewport), depth (scroll), name (custom)."""
    session = await _audited_session(request, db, principal, session_id, "session_events_viewed")
    window = await svc.timeline_window(
        db, session, from_ms=from_ms, after=after, before=before, limit=limit, viewer=svc.is_viewer(principal)
    )
    await db.commit()
    return window


@router.get("/api/clarity/sessions/{session_id}/analytics")
async def session_analytics(
    request: Request, session_id: uuid.UUID, db: DbDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Time on site, active time (gaps over 30 s left out), pages, bounce, conversions, errors."""
    session = await _audited_session(request, db, principal, session_id, "session_analytics_viewed")
    result = await svc.session_analytics(db, session)
    await db.commit()
    return {"sessionId": str(session.id), "metrics": result.as_json()}


@router.get("/api/clarity/sessions/{session_id}/heatmap")
async def session_heatmap(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    url: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> dict[str, Any]:
    """Click points (x, y, viewport w/h, weight) of one page of this session (default: busiest page)."""
    session = await _audited_session(request, db, principal, session_id, "session_heatmap_viewed")
    result = await svc.heatmap(db, [session.id], url)
    await db.commit()
    result["sessionId"] = str(session.id)
    result["clarityHeatmapUrl"] = svc.clarity_heatmap_url(session, settings)
    return result


@router.get("/api/clarity/sessions/{session_id}/annotations")
async def list_annotations(
    request: Request, session_id: uuid.UUID, db: DbDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    session = await _audited_session(request, db, principal, session_id, "session_annotations_viewed")
    items = await notes.list_for_session(db, session)
    await db.commit()
    return {"sessionId": str(session.id), "items": items}


@router.post("/api/clarity/sessions/{session_id}/annotate", status_code=201)
async def annotate(
    request: Request, session_id: uuid.UUID, body: notes.AnnotationIn, db: DbDep, principal: AgentPrincipal
) -> dict[str, Any]:
    """Add a note at a moment of the session: {timestamp | offsetMs, note (≤ 2,000), category, severity}."""
    session = await svc.get_session(db, session_id)
    a = await notes.create(db, session, principal.agent, body)
    await audit.record_session(
        db,
        "annotation_created",
        session,
        request=request,
        actor=principal.agent,
        annotation=str(a.id),
        category=a.category,
        severity=a.severity,
    )
    return notes.annotation_json(a, session, principal.agent.name or principal.agent.email)


async def _changeable(
    db: DbDep, principal: Principal, session_id: uuid.UUID, annotation_id: uuid.UUID
) -> tuple[UserSession, Any]:
    session = await svc.get_session(db, session_id)
    a = await notes.get_live(db, session, annotation_id)
    if not notes.can_change(principal.agent, a):
        raise ProblemError(403, "Forbidden", "only the note's author or an admin may change it")
    return session, a


@router.patch("/api/clarity/sessions/{session_id}/annotations/{annotation_id}")
async def edit_annotation(
    request: Request,
    session_id: uuid.UUID,
    annotation_id: uuid.UUID,
    body: notes.AnnotationPatch,
    db: DbDep,
    principal: AgentPrincipal,
) -> dict[str, Any]:
    session, a = await _changeable(db, principal, session_id, annotation_id)
    changed = await notes.update(db, session, a, body)
    await audit.record_session(
        db,
        "annotation_updated",
        session,
        request=request,
        actor=principal.agent,
        annotation=str(a.id),
        changed=changed,
    )
    return notes.annotation_json(a, session, None)


@router.delete("/api/clarity/sessions/{session_id}/annotations/{annotation_id}", status_code=204)
async def delete_annotation(
    request: Request, session_id: uuid.UUID, annotation_id: uuid.UUID, db: DbDep, principal: AgentPrincipal
) -> Response:
    session, a = await _changeable(db, principal, session_id, annotation_id)
    await notes.soft_delete(db, a)
    await audit.record_session(
        db, "annotation_deleted", session, request=request, actor=principal.agent, annotation=str(a.id)
    )
    return Response(status_code=204)


def _stream(body: Any, fmt: str, filename: str) -> StreamingResponse:
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/api/clarity/sessions/{session_id}/export")
async def export_session(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    principal: AgentPrincipal,
    format: ExportFormat = "json",
) -> StreamingResponse:
    """The session's events as JSON or CSV, streamed page by page (agents and admins)."""
    session = await svc.get_session(db, session_id)
    await audit.record_session(
        db, "session_exported", session, request=request, actor=principal.agent, format=format
    )
    body = svc.export_session_events(request.app.state.sessionmaker, session, format)
    return _stream(body, format, f"session-{session.id}-events")


# ---------------------------------------------------------------- customer pages and APIs


async def _audit_customer(
    request: Request, db: DbDep, principal: Principal, action: str, email: str, **d: Any
) -> None:
    await audit.record(
        db,
        action,
        request=request,
        actor=principal.agent,
        target_type="customer",
        target=audit.customer_ref(email),
        detail=d,
    )


def _display_email(principal: Principal, email: str) -> str:
    return mask_email(email) if svc.is_viewer(principal) else email


def _sessions_json(rows: list[tuple[UserSession, int]], settings: Any, email: str, viewer: bool) -> list[Any]:
    cust = {"email": email, "method": None, "confidence": None}
    out = []
    for s, n in rows:
        item = svc.session_dict(s, cust, settings, viewer=viewer)
        item.pop("mapping", None)
        item["notes"] = n
        item["signals"] = {
            "errors": s.error_count,
            "rageClicks": s.rage_click_count,
            "deadClicks": s.dead_click_count,
            "maxScrollDepth": s.max_scroll_depth,
        }
        out.append(item)
    return out


@router.get("/api/customers/{email}/sessions")
async def customer_sessions_api(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    has_notes: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The customer's sessions, newest first, each with its count of notes; `has_notes=1` keeps only
    sessions an agent annotated."""
    email = svc.normalise_email(email)
    rows = await svc.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, has_notes=has_notes, limit=limit
    )
    await _audit_customer(request, db, principal, "customer_sessions_viewed", email, has_notes=has_notes)
    return {"items": _sessions_json(rows, settings, email, svc.is_viewer(principal))}


@router.get("/api/customers/{email}/analytics")
async def customer_analytics_api(
    request: Request, email: str, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Sessions per day, devices, most visited pages, errors and frustration per day."""
    email = svc.normalise_email(email)
    data = await svc.customer_analytics(db, email, min_confidence=settings.mapping_min_confidence)
    await _audit_customer(request, db, principal, "customer_analytics_viewed", email)
    if svc.is_viewer(principal):
        from supportlens.privacy.masking import mask_pii_text

        for p in data["topPages"]:
            p["url"] = mask_pii_text(p["url"])
    return data


@router.get("/api/customers/{email}/heatmap")
async def customer_heatmap(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    url: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> dict[str, Any]:
    """Click points of one page over all of the customer's sessions (newest 500)."""
    email = svc.normalise_email(email)
    rows = await svc.customer_sessions(db, email, min_confidence=settings.mapping_min_confidence, limit=500)
    result = await svc.heatmap(db, [s.id for s, _ in rows], url)
    await _audit_customer(request, db, principal, "customer_heatmap_viewed", email)
    result["clarityHeatmapUrl"] = svc.clarity_heatmap_url(rows[0][0], settings) if rows else None
    return result


@router.get("/api/customers/{email}/export")
async def export_customer(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
    format: ExportFormat = "json",
) -> StreamingResponse:
    """The customer's sessions as JSON or CSV, streamed page by page (agents and admins)."""
    email = svc.normalise_email(email)
    await _audit_customer(request, db, principal, "customer_exported", email, format=format)
    body = svc.export_customer_sessions(
        request.app.state.sessionmaker, email, format, settings.mapping_min_confidence
    )
    return _stream(body, format, "customer-sessions")


def _day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    from datetime import UTC

    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    end = datetime.combine(until, time.min, tzinfo=UTC) + timedelta(days=1) if until else None
    if start and end and end <= start:
        raise ProblemError(400, "Invalid dates", "`to` is before `from`", field="to")
    return start, end


SourcesQuery = Annotated[str, Query(max_length=100, description="comma list: sessions,dwolla,hubspot")]


def _sources(raw: str | list[str]) -> set[str]:
    parts = raw if isinstance(raw, list) else raw.split(",")
    wanted = {p.strip() for p in parts if p.strip()}
    bad = wanted - set(journey_mod.SOURCES)
    if bad:
        raise ProblemError(400, "Invalid source", f"unknown source {sorted(bad)[0]!r}", field="sources")
    return wanted or set(journey_mod.SOURCES)


@router.get("/api/customers/{email}/journey")
async def customer_journey_api(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    sources: SourcesQuery = "",
    from_: Annotated[OptionalDay, Query(alias="from")] = None,
    to: OptionalDay = None,
) -> dict[str, Any]:
    """One chronological stream of the customer's sessions, Dwolla and HubSpot activity.

    Each item: {at, source, kind, title, detail, anchor, url?, sessionId?, offsetMs?, badges?}; `sources`
    says per source ok | error | not_configured | skipped with a note; `correlations` pairs failed
    transfers with session errors within 30 minutes."""
    email = svc.normalise_email(email)
    since, until = _day_bounds(from_, to)
    result = await journey_mod.build(
        request.app,
        db,
        email,
        sources=_sources(sources),
        since=since,
        until=until,
        viewer=svc.is_viewer(principal),
    )
    await _audit_customer(request, db, principal, "customer_journey_viewed", email)
    return result


@pages.get("/customers/{email}/journey", response_class=HTMLResponse)
async def customer_journey_page(
    request: Request,
    email: str,
    db: DbDep,
    principal: CurrentPrincipal,
    source: Annotated[list[str] | None, Query(max_length=3)] = None,
    from_: Annotated[OptionalDay, Query(alias="from")] = None,
    to: OptionalDay = None,
) -> HTMLResponse:
    email = svc.normalise_email(email)
    chosen = _sources(source or [])
    since, until = _day_bounds(from_, to)
    viewer = svc.is_viewer(principal)
    result = await journey_mod.build(
        request.app, db, email, sources=chosen, since=since, until=until, viewer=viewer
    )
    errors = [uuid.UUID(i["eventId"]) for i in result["items"] if i.get("eventId")]
    issue_of = await only_them_of_events(
        db, errors, [email], min_confidence=request.app.state.settings.mapping_min_confidence
    )
    await _audit_customer(request, db, principal, "customer_journey_viewed", email)
    return render(
        request,
        "investigation/journey.html",
        {
            "email": email,
            "email_display": _display_email(principal, email),
            "journey": result,
            "issue_of": issue_of,
            "days": journey_mod.days_newest_first(result["items"]),
            "chosen": chosen,
            "all_sources": journey_mod.SOURCES,
            "from_": from_.isoformat() if from_ else "",
            "to": to.isoformat() if to else "",
        },
    )


@pages.get("/customers/{email}/analytics", response_class=HTMLResponse)
async def customer_analytics_page(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    has_notes: bool = False,
) -> HTMLResponse:
    email = svc.normalise_email(email)
    viewer = svc.is_viewer(principal)
    data = await svc.customer_analytics(db, email, min_confidence=settings.mapping_min_confidence)
    rows = await svc.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, has_notes=has_notes, limit=50
    )
    first = rows[:1] or await svc.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, limit=1
    )
    await _audit_customer(request, db, principal, "customer_analytics_viewed", email, has_notes=has_notes)
    if viewer:
        from supportlens.privacy.masking import mask_pii_text

        for p in data["topPages"]:
            p["url"] = mask_pii_text(p["url"])
    return render(
        request,
        "investigation/analytics.html",
        {
            "email": email,
            "email_display": _display_email(principal, email),
            "data": data,
            "sessions": rows,
            "has_notes": has_notes,
            "heat_clarity_url": svc.clarity_heatmap_url(first[0][0], settings) if first else None,
            "can_export": not viewer,
            "viewer": viewer,
        },
    )


# ---------------------------------------------------------------- admin: conversion goals


@pages.get("/admin/goals", response_class=HTMLResponse)
async def goals_page(request: Request, db: DbDep, principal: AdminPrincipal, error: str = "") -> HTMLResponse:
    goals = await svc.list_goals(db)
    return render(request, "investigation/goals.html", {"goals": goals, "error": error[:200]})


@pages.post("/admin/goals")
async def add_goal(
    request: Request,
    db: DbDep,
    principal: AdminPrincipal,
    kind: Annotated[str, Form(max_length=8)] = "",
    value: Annotated[str, Form(max_length=500)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    value = value.strip()
    if kind not in GOAL_KINDS or not value:
        goals = await svc.list_goals(db)
        msg = "Choose a kind and enter a URL part or an event name."
        return render(request, "investigation/goals.html", {"goals": goals, "error": msg}, status_code=400)
    goal = ConversionGoal(kind=kind, value=value, label=label.strip(), created_by_agent_id=principal.agent.id)
    db.add(goal)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        goals = await svc.list_goals(db)
        return render(
            request,
            "investigation/goals.html",
            {"goals": goals, "error": "That goal exists."},
            status_code=409,
        )
    await audit.record(
        db,
        "conversion_goal_added",
        request=request,
        actor=principal.agent,
        target_type="conversion_goal",
        target=str(goal.id),
        detail={"kind": kind, "value": value[:200]},
    )
    return RedirectResponse("/admin/goals", status_code=303)


@pages.post("/admin/goals/{goal_id}/delete")
async def delete_goal(request: Request, goal_id: uuid.UUID, db: DbDep, principal: AdminPrincipal) -> Response:
    goal = await db.get(ConversionGoal, goal_id)
    if goal is None:
        raise ProblemError(404, "Goal not found")
    await db.delete(goal)
    await audit.record(
        db,
        "conversion_goal_deleted",
        request=request,
        actor=principal.agent,
        target_type="conversion_goal",
        target=str(goal_id),
        detail={"kind": goal.kind, "value": goal.value[:200]},
    )
    return RedirectResponse("/admin/goals", status_code=303)


router.include_router(pages)
__all__ = ["router", "select"]
