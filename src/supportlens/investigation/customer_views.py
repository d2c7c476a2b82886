"""A customer's pages and APIs: sessions, analytics, heatmap, journey and export (all audited)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from supportlens.audit import service as audit
from supportlens.auth.deps import (
    AgentPrincipal,
    CurrentPrincipal,
    DbDep,
    Principal,
    SettingsDep,
)
from supportlens.config import Settings
from supportlens.deps import DirectoryDep, SessionmakerDep
from supportlens.investigation import export as exports
from supportlens.investigation import journey as journey_mod
from supportlens.investigation.views import ExportFormat, download
from supportlens.issues.reads import only_them_of_events
from supportlens.params import OptionalDay
from supportlens.problems import ProblemError
from supportlens.sessions import analytics
from supportlens.sessions import reads as svc
from supportlens.sessions.models import UserSession
from supportlens.web.pages import render
from supportlens.web.viewer import Fields, Pii, is_viewer, mask_json

router = APIRouter(tags=["investigation"])
pages = APIRouter(include_in_schema=False)


async def _audit_customer(
    request: Request, db: DbDep, settings: Settings, principal: Principal, action: str, email: str, **d: Any
) -> None:
    await audit.record(
        db,
        action,
        request=request,
        actor=principal.agent,
        target_type="customer",
        target=audit.customer_ref(email, settings),
        detail=d,
    )


# The customer's most visited pages: their URLs, masked for viewers (web/viewer.py).
TOP_PAGE_FIELDS: Fields = {"url": Pii.text}


def _sessions_json(rows: list[tuple[UserSession, int]], settings: Any, email: str) -> list[Any]:
    cust = {"email": email, "method": None, "confidence": None}
    out = []
    for s, n in rows:
        item = svc.session_dict(s, cust, settings)
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
    rows = await analytics.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, has_notes=has_notes, limit=limit
    )
    await _audit_customer(
        request, db, settings, principal, "customer_sessions_viewed", email, has_notes=has_notes
    )
    items = _sessions_json(rows, settings, email)
    return {"items": mask_json(items, svc.SESSION_FIELDS, is_viewer(principal))}


@router.get("/api/customers/{email}/analytics")
async def customer_analytics_api(
    request: Request, email: str, db: DbDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Sessions per day, devices, most visited pages, errors and frustration per day."""
    email = svc.normalise_email(email)
    data = await analytics.customer_analytics(db, email, min_confidence=settings.mapping_min_confidence)
    await _audit_customer(request, db, settings, principal, "customer_analytics_viewed", email)
    data["topPages"] = mask_json(data["topPages"], TOP_PAGE_FIELDS, is_viewer(principal))
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
    rows = await analytics.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, limit=500
    )
    result = await analytics.heatmap(db, [s.id for s, _ in rows], url)
    await _audit_customer(request, db, settings, principal, "customer_heatmap_viewed", email)
    result["clarityHeatmapUrl"] = svc.clarity_heatmap_url(rows[0][0], settings) if rows else None
    return result


@router.get("/api/customers/{email}/export")
async def export_customer(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    principal: AgentPrincipal,
    format: ExportFormat = "json",
) -> StreamingResponse:
    """The customer's sessions as JSON or CSV, streamed page by page (agents and admins)."""
    email = svc.normalise_email(email)
    await _audit_customer(request, db, settings, principal, "customer_exported", email, format=format)
    body = exports.export_customer_sessions(sessionmaker, email, format, settings.mapping_min_confidence)
    return download(body, format, "customer-sessions")


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
    directory: DirectoryDep,
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
        directory,
        settings,
        db,
        email,
        sources=_sources(sources),
        since=since,
        until=until,
    )
    result = mask_json(result, journey_mod.VIEWER_FIELDS, is_viewer(principal))
    await _audit_customer(request, db, settings, principal, "customer_journey_viewed", email)
    return result


@pages.get("/customers/{email}/journey", response_class=HTMLResponse)
async def customer_journey_page(
    request: Request,
    email: str,
    db: DbDep,
    settings: SettingsDep,
    directory: DirectoryDep,
    principal: CurrentPrincipal,
    source: Annotated[list[str] | None, Query(max_length=3)] = None,
    from_: Annotated[OptionalDay, Query(alias="from")] = None,
    to: OptionalDay = None,
) -> HTMLResponse:
    email = svc.normalise_email(email)
    chosen = _sources(source or [])
    since, until = _day_bounds(from_, to)
    result = await journey_mod.build(directory, settings, db, email, sources=chosen, since=since, until=until)
    result = mask_json(result, journey_mod.VIEWER_FIELDS, is_viewer(principal))
    errors = [uuid.UUID(i["eventId"]) for i in result["items"] if i.get("eventId")]
    issue_of = await only_them_of_events(db, errors, [email], min_confidence=settings.mapping_min_confidence)
    await _audit_customer(request, db, settings, principal, "customer_journey_viewed", email)
    return render(
        request,
        "investigation/journey.html",
        {
            "email": email,
            "email_display": Pii.email.for_viewer(email, is_viewer(principal)),
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
    viewer = is_viewer(principal)
    data = await analytics.customer_analytics(db, email, min_confidence=settings.mapping_min_confidence)
    rows = await analytics.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, has_notes=has_notes, limit=50
    )
    first = rows[:1] or await analytics.customer_sessions(
        db, email, min_confidence=settings.mapping_min_confidence, limit=1
    )
    await _audit_customer(
        request, db, settings, principal, "customer_analytics_viewed", email, has_notes=has_notes
    )
    data["topPages"] = mask_json(data["topPages"], TOP_PAGE_FIELDS, viewer)
    return render(
        request,
        "investigation/analytics.html",
        {
            "email": email,
            "email_display": Pii.email.for_viewer(email, viewer),
            "data": data,
            "sessions": rows,
            "has_notes": has_notes,
            "heat_clarity_url": svc.clarity_heatmap_url(first[0][0], settings) if first else None,
            "can_export": not viewer,
            "viewer": viewer,
        },
    )


router.include_router(pages)
