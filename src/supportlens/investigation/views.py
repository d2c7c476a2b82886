"""The session view and its JSON APIs: timeline, analytics, heatmap, notes, export (all audited)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select

from supportlens.audit import service as audit
from supportlens.auth.deps import (
    AgentPrincipal,
    CurrentPrincipal,
    DbDep,
    Principal,
    SettingsDep,
)
from supportlens.config import Settings
from supportlens.deps import SessionmakerDep
from supportlens.investigation import annotations as notes
from supportlens.investigation import export as exports
from supportlens.investigation import story as story_mod
from supportlens.investigation.story_reads import MAX_STORY_EVENTS, story_events
from supportlens.issues.reads import only_them_of_session
from supportlens.params import decodes_with
from supportlens.problems import ProblemError
from supportlens.sessions import analytics as stats
from supportlens.sessions import reads as svc
from supportlens.sessions.models import UserSession
from supportlens.web.pages import render
from supportlens.web.viewer import Pii, is_viewer, mask_json

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
    viewer = is_viewer(principal)

    # Small indexed reads, one after another on this request's connection: under load, five pool
    # checkouts and transactions per page cost more than the waits they overlap.
    customer = await svc.customer_of(db, session, settings.mapping_min_confidence)
    analytics = await stats.session_analytics(db, session, await stats.list_goals(db))
    # Masked as they are read: the page shows them, and the site context is looked up by their URLs.
    marks = mask_json(await svc.markers(db, session), svc.EVENT_FIELDS, viewer)
    first = mask_json(await svc.timeline_window(db, session, limit=100), svc.EVENT_FIELDS, viewer)
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
    await audit.record_session(
        db, "session_viewed", session, settings=settings, request=request, actor=principal.agent, **at
    )
    summary = mask_json(svc.session_dict(session, customer, settings), svc.SESSION_FIELDS, viewer)
    duration_ms = max(
        svc.offset_ms(session.session_end, session.session_start),
        max((m["t"] for m in marks), default=0),
        first["events"][-1]["t"] if first["events"] else 0,
    )
    story = story_mod.build_story(await story_events(db, session), duration_ms=duration_ms, focus_ms=t)
    if viewer:  # the story is rendered from its own objects: every text it shows, through the one rule
        story_mod.mask_story(story, Pii.text.shown)
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
        "customer_display": Pii.email.for_viewer(customer["email"], viewer) if customer else None,
        "analytics": analytics,
        "recording": svc.recording_status(session, settings),
        "player": player,
        "heat_clarity_url": svc.clarity_heatmap_url(session, settings),
        "can_export": not viewer,
        "viewer": viewer,
        "site_context": site_ctx,
        "has_site_context": site_ctx is not None,
        "story": story,
        "untold": max(0, session.event_count - story.events) if story.events >= MAX_STORY_EVENTS else 0,
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
    request: Request,
    db: DbDep,
    settings: Settings,
    principal: Principal,
    session_id: uuid.UUID,
    action: str,
    **detail: Any,
) -> UserSession:
    session = await svc.get_session(db, session_id)
    await audit.record_session(
        db, action, session, settings=settings, request=request, actor=principal.agent, commit=False, **detail
    )
    return session


@router.get("/api/clarity/sessions/{session_id}/timeline")
async def session_timeline(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
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
    session = await _audited_session(request, db, settings, principal, session_id, "session_events_viewed")
    window = await svc.timeline_window(db, session, from_ms=from_ms, after=after, before=before, limit=limit)
    await db.commit()
    return mask_json(window, svc.EVENT_FIELDS, is_viewer(principal))


@router.get("/api/clarity/sessions/{session_id}/analytics")
async def session_analytics(
    request: Request, session_id: uuid.UUID, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Time on site, active time (gaps over 30 s left out), pages, bounce, conversions, errors."""
    session = await _audited_session(request, db, settings, principal, session_id, "session_analytics_viewed")
    result = await stats.session_analytics(db, session)
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
    session = await _audited_session(request, db, settings, principal, session_id, "session_heatmap_viewed")
    result = await stats.heatmap(db, [session.id], url)
    await db.commit()
    result["sessionId"] = str(session.id)
    result["clarityHeatmapUrl"] = svc.clarity_heatmap_url(session, settings)
    return result


@router.get("/api/clarity/sessions/{session_id}/annotations")
async def list_annotations(
    request: Request, session_id: uuid.UUID, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    session = await _audited_session(
        request, db, settings, principal, session_id, "session_annotations_viewed"
    )
    items = await notes.list_for_session(db, session)
    await db.commit()
    return {"sessionId": str(session.id), "items": items}


@router.post("/api/clarity/sessions/{session_id}/annotate", status_code=201)
async def annotate(
    request: Request,
    session_id: uuid.UUID,
    body: notes.AnnotationIn,
    db: DbDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
) -> dict[str, Any]:
    """Add a note at a moment of the session: {timestamp | offsetMs, note (≤ 2,000), category, severity}."""
    session = await svc.get_session(db, session_id)
    a = await notes.create(db, session, principal.agent, body)
    await audit.record_session(
        db,
        "annotation_created",
        session,
        settings=settings,
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
    settings: SettingsDep,
    principal: AgentPrincipal,
) -> dict[str, Any]:
    session, a = await _changeable(db, principal, session_id, annotation_id)
    changed = await notes.update(db, session, a, body)
    await audit.record_session(
        db,
        "annotation_updated",
        session,
        settings=settings,
        request=request,
        actor=principal.agent,
        annotation=str(a.id),
        changed=changed,
    )
    return notes.annotation_json(a, session, None)


@router.delete("/api/clarity/sessions/{session_id}/annotations/{annotation_id}", status_code=204)
async def delete_annotation(
    request: Request,
    session_id: uuid.UUID,
    annotation_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
) -> Response:
    session, a = await _changeable(db, principal, session_id, annotation_id)
    await notes.soft_delete(db, a)
    await audit.record_session(
        db,
        "annotation_deleted",
        session,
        settings=settings,
        request=request,
        actor=principal.agent,
        annotation=str(a.id),
    )
    return Response(status_code=204)


def download(body: Any, fmt: str, filename: str) -> StreamingResponse:
    """An export as a file download, never cached."""
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
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    principal: AgentPrincipal,
    format: ExportFormat = "json",
) -> StreamingResponse:
    """The session's events as JSON or CSV, streamed page by page (agents and admins)."""
    session = await svc.get_session(db, session_id)
    await audit.record_session(
        db,
        "session_exported",
        session,
        settings=settings,
        request=request,
        actor=principal.agent,
        format=format,
    )
    body = exports.export_session_events(sessionmaker, session, format)
    return download(body, format, f"session-{session.id}-events")


router.include_router(pages)
__all__ = ["router", "select"]
