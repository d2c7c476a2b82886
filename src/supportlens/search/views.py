"""Search routes: the JSON API, the history API and the HTML panels of the search page."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from supportlens.audit import service as audit
from supportlens.auth.deps import CurrentPrincipal, DbDep, SettingsDep
from supportlens.config import Settings
from supportlens.customers.directory import CustomerDirectory, SourceResult, correlation_of
from supportlens.customers.query import SearchQuery, parse_query
from supportlens.db.engine import autocommit
from supportlens.deps import DirectoryDep, HubSpotDep, SessionmakerDep, per_app
from supportlens.integrations.breaker import manual_retry
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens.issues.trouble import load_summary
from supportlens.search import history, links
from supportlens.search.links import AccountLookup, new_account_lookup
from supportlens.search.sources import search_all
from supportlens.web.pages import render
from supportlens.web.viewer import Fields, Pii, is_viewer, mask_json

router = APIRouter()
log = structlog.get_logger(__name__)


def _inconsistent_value(record: Mapping[str, Any]) -> Pii | None:
    """The two systems' values of an inconsistency are e-mails when the e-mails differ."""
    return Pii.email if record.get("field") == "email" else None


# What a viewer sees of a search answer (the vendors' records as JSON): web/viewer.py masks these.
SEARCH_FIELDS: Fields = {
    "email": Pii.email,
    "customerEmail": Pii.email,
    "hubspot_email": Pii.email,
    "bestEmail": Pii.email,
    "phone": Pii.phone,
    "mobilePhone": Pii.phone,
    "hubspot": _inconsistent_value,
    "dwolla": _inconsistent_value,
}


def query_json(query: SearchQuery) -> dict[str, Any]:
    return {
        "raw": query.raw,
        "text": query.text,
        "kind": query.kind,
        "email": query.email,
        "phoneE164": query.phone_e164,
    }


async def audit_search(
    db: DbDep,
    settings: Settings,
    request: Request,
    principal: Any,
    query: SearchQuery,
    via: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await audit.record(
        db,
        "customer.search",
        request=request,
        actor=principal.agent,
        target_type="search",
        target=audit.customer_ref(query.normalized, settings),
        detail={"kind": query.kind, "via": via, **(detail or {})},
    )


@router.get("/api/search", tags=["search"], summary="Search HubSpot, Dwolla and sessions at once")
async def api_search(
    request: Request,
    principal: CurrentPrincipal,
    db: DbDep,
    background: BackgroundTasks,
    directory: DirectoryDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    q: str | None = None,
    refresh: bool = False,
) -> JSONResponse:
    """Each source answers `{status: ok|error|timeout, items, error?, tookMs}` within its own deadline;
    `correlation` pairs HubSpot contacts with Dwolla customers; `summary` is "what happened": each failed
    transfer (newest first, return code in plain words) with the session moments within 30 minutes."""
    query = parse_query(q if q is not None else "")
    searching = asyncio.create_task(search_all(directory, query, refresh=refresh))
    try:
        await autocommit(db)  # the audit row is one INSERT
        await audit_search(db, settings, request, principal, query, "api")  # written while the sources answer
    except BaseException:
        searching.cancel()
        raise
    results = await searching
    correlation = correlation_of(query, results["hubspot"], results["dwolla"])
    counts = {name: len(r.items) for name, r in results.items() if r.status == "ok"}
    # The history entry (with what each source found) is written once the answer has gone out.
    background.add_task(_record_history, sessionmaker, principal.agent.id, query, counts)
    body: dict[str, Any] = {"query": query_json(query)}
    body.update({name: r.as_json() for name, r in results.items()})
    body["correlation"] = correlation.model_dump(mode="json", by_alias=True)
    body["summary"] = await _summary(db, principal, query, results["dwolla"], settings.mapping_min_confidence)
    return JSONResponse(mask_json(body, SEARCH_FIELDS, is_viewer(principal)))


async def _summary(
    db: DbDep, principal: Any, query: SearchQuery, dwolla: SourceResult, min_confidence: float
) -> dict[str, Any]:
    return await load_summary(
        db,
        dwolla.status,
        dwolla.items,
        query_email=query.email,
        min_confidence=min_confidence,
        viewer=is_viewer(principal),
        dwolla_error=f"Dwolla {dwolla.plain}" if dwolla.plain else dwolla.error,
    )


async def _record_history(
    sessionmaker: Any, agent_id: Any, query: SearchQuery, counts: dict[str, int]
) -> None:
    try:
        async with sessionmaker() as db:
            await autocommit(db)  # one statement
            await history.record(db, agent_id, query, counts)
    except Exception as exc:  # history is a convenience; the search itself has been answered and audited
        log.warning("search.history_failed", error=type(exc).__name__)


@router.get("/api/search/history", tags=["search"], summary="The agent's last 20 searches")
async def api_history(principal: CurrentPrincipal, db: DbDep) -> dict[str, Any]:
    rows = await history.recent(db, principal.agent.id)
    return {"items": [history.as_json(r) for r in rows]}


@router.delete("/api/search/history", tags=["search"], status_code=204, summary="Clear the agent's history")
async def api_clear_history(request: Request, principal: CurrentPrincipal, db: DbDep) -> Response:
    removed = await history.clear(db, principal.agent.id)
    await audit.record(
        db, "search.history_cleared", request=request, actor=principal.agent, detail={"removed": removed}
    )
    return Response(status_code=204)


# ------------------------------------------------------------------------------------------ HTML


def _parse_or_none(q: str | None) -> SearchQuery | None:
    try:
        return parse_query(q or "")
    except Exception:
        return None


async def _both(
    service: CustomerDirectory, query: SearchQuery, refresh: bool
) -> tuple[SourceResult, SourceResult]:
    hubspot, dwolla = await asyncio.gather(
        service.source("hubspot", query, refresh=refresh), service.source("dwolla", query, refresh=refresh)
    )
    return hubspot, dwolla


PanelName = Literal["hubspot", "dwolla", "sessions", "correlation", "summary"]


# When HubSpot's account endpoint last failed, shared by the app's searches (search/links.py).
AccountLookupDep = Annotated[AccountLookup, Depends(per_app("hubspot_account_lookup", new_account_lookup))]


@dataclass
class PanelSources:
    """What a search panel reads from: the customer directory, HubSpot's client for record links."""

    directory: CustomerDirectory
    hubspot: HubSpotClient
    settings: Settings
    account_lookup: AccountLookup


async def _panel_sources(
    directory: DirectoryDep, hubspot: HubSpotDep, settings: SettingsDep, account_lookup: AccountLookupDep
) -> PanelSources:
    return PanelSources(directory, hubspot, settings, account_lookup)


PanelSourcesDep = Annotated[PanelSources, Depends(_panel_sources)]


@router.get("/search/panel/{panel}", response_class=HTMLResponse, include_in_schema=False)
async def panel(
    request: Request,
    panel: PanelName,
    principal: CurrentPrincipal,
    db: DbDep,
    sources: PanelSourcesDep,
    q: str | None = None,
    refresh: bool = False,
) -> HTMLResponse:
    query = parse_query(q if q is not None else "")
    if refresh:  # an agent pressed Retry or Refresh: one call may go through an open circuit at once
        with manual_retry():
            return await _panel(request, panel, principal, db, sources, query, refresh)
    return await _panel(request, panel, principal, db, sources, query, refresh)


async def _panel(
    request: Request,
    panel: PanelName,
    principal: Any,
    db: DbDep,
    sources: PanelSources,
    query: SearchQuery,
    refresh: bool,
) -> HTMLResponse:
    service, settings = sources.directory, sources.settings
    ctx: dict[str, Any] = {"q": query.text, "query": query, "panel": panel}
    if panel == "hubspot":
        result, ctx["hubspot_account"] = await asyncio.gather(
            service.source(panel, query, refresh=refresh),
            links.hubspot_account(sources.hubspot, settings, sources.account_lookup),
        )
    elif panel == "dwolla":
        result = await service.source(panel, query, refresh=refresh)
        ctx["dwolla_dashboard"] = links.dwolla_dashboard(settings)
    if panel in ("hubspot", "dwolla"):
        ctx["result"] = result
        if panel == "hubspot" and result.status == "ok":  # the sessions agents attached to each ticket
            from supportlens.crmnotes.service import sessions_by_ticket

            ticket_ids = [str(t["id"]) for i in result.items for t in i.get("tickets") or []]
            ctx["attached"] = await sessions_by_ticket(db, ticket_ids)
        await audit_search(
            db, settings, request, principal, query, f"panel:{panel}", {"status": result.status}
        )
        await history.update_counts(db, principal.agent.id, query, {panel: len(result.items)})
        return render(request, f"search/_{panel}.html", ctx)
    if panel == "summary":
        result = await service.source("dwolla", query, refresh=refresh)
        ctx["result"] = result
        ctx["summary"] = await _summary(db, principal, query, result, settings.mapping_min_confidence)
        return render(request, "search/_summary.html", ctx)
    hubspot, dwolla = await _both(service, query, refresh)
    correlation = correlation_of(query, hubspot, dwolla)
    ctx["correlation"] = correlation
    ctx["hubspot_items"] = {i["contact"]["id"]: i for i in hubspot.items} if hubspot.status == "ok" else {}
    ctx["dwolla_items"] = {i["customer"]["id"]: i for i in dwolla.items} if dwolla.status == "ok" else {}
    if panel == "correlation":
        return render(request, "search/_correlation.html", ctx)
    ctx["customer_email"] = correlation.best_email
    return render(request, "search/_sessions.html", ctx)


@router.get("/search/history", response_class=HTMLResponse, include_in_schema=False)
async def history_partial(request: Request, principal: CurrentPrincipal, db: DbDep) -> HTMLResponse:
    rows = await history.recent(db, principal.agent.id)
    return render(request, "search/_history.html", {"history": rows})


@router.delete("/search/history", response_class=HTMLResponse, include_in_schema=False)
async def history_clear_partial(request: Request, principal: CurrentPrincipal, db: DbDep) -> HTMLResponse:
    removed = await history.clear(db, principal.agent.id)
    await audit.record(
        db, "search.history_cleared", request=request, actor=principal.agent, detail={"removed": removed}
    )
    return render(request, "search/_history.html", {"history": []})
