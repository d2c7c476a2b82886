"""Search routes: the JSON API, the history API and the HTML panels of the search page."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import structlog
from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from supportlens.audit import service as audit
from supportlens.auth.deps import CurrentPrincipal, DbDep
from supportlens.customers.directory import CustomerDirectory, SourceResult, correlation_of, get_directory
from supportlens.customers.query import SearchQuery, parse_query
from supportlens.db.engine import autocommit
from supportlens.deps import DirectoryDep, SessionmakerDep
from supportlens.integrations.breaker import manual_retry
from supportlens.issues.trouble import load_summary
from supportlens.masking import mask_email, mask_phone
from supportlens.search import history, links
from supportlens.search.sources import search_all
from supportlens.web.pages import render

router = APIRouter()
log = structlog.get_logger(__name__)

EMAIL_KEYS = frozenset({"email", "customerEmail", "hubspot_email", "bestEmail"})
PHONE_KEYS = frozenset({"phone", "mobilePhone"})


def _is_viewer(principal: Any) -> bool:
    return getattr(principal.agent, "role", None) == "viewer"


def mask_tree(value: Any, parent_key: str | None = None) -> Any:
    """Viewers' copy of an answer: e-mail and phone values masked wherever they appear."""
    if isinstance(value, dict):
        if value.get("field") == "email":  # an inconsistency between the two systems' e-mails
            return {
                k: mask_email(v) if k in ("hubspot", "dwolla") and isinstance(v, str) else v
                for k, v in value.items()
            }
        return {k: mask_tree(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_tree(v, parent_key) for v in value]
    if isinstance(value, str) and parent_key in EMAIL_KEYS:
        return mask_email(value)
    if isinstance(value, str) and parent_key in PHONE_KEYS:
        return mask_phone(value)
    return value


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
        target=audit.customer_ref(query.normalized),
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
        await audit_search(db, request, principal, query, "api")  # written while the sources answer
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
    body["summary"] = await _summary(request, db, principal, query, results["dwolla"])
    if _is_viewer(principal):
        body = mask_tree(body)
    return JSONResponse(body)


async def _summary(
    request: Request, db: DbDep, principal: Any, query: SearchQuery, dwolla: SourceResult
) -> dict[str, Any]:
    return await load_summary(
        db,
        dwolla.status,
        dwolla.items,
        query_email=query.email,
        min_confidence=request.app.state.settings.mapping_min_confidence,
        viewer=_is_viewer(principal),
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


@router.get("/search/panel/{panel}", response_class=HTMLResponse, include_in_schema=False)
async def panel(
    request: Request,
    panel: PanelName,
    principal: CurrentPrincipal,
    db: DbDep,
    q: str | None = None,
    refresh: bool = False,
) -> HTMLResponse:
    query = parse_query(q if q is not None else "")
    if refresh:  # an agent pressed Retry or Refresh: one call may go through an open circuit at once
        with manual_retry():
            return await _panel(request, panel, principal, db, query, refresh)
    return await _panel(request, panel, principal, db, query, refresh)


async def _panel(
    request: Request, panel: PanelName, principal: Any, db: DbDep, query: SearchQuery, refresh: bool
) -> HTMLResponse:
    service = get_directory(request.app)
    ctx: dict[str, Any] = {"q": query.text, "query": query, "panel": panel}
    if panel == "hubspot":
        result, ctx["hubspot_account"] = await asyncio.gather(
            service.source(panel, query, refresh=refresh), links.hubspot_account(request.app)
        )
    elif panel == "dwolla":
        result = await service.source(panel, query, refresh=refresh)
        ctx["dwolla_dashboard"] = links.dwolla_dashboard(request.app)
    if panel in ("hubspot", "dwolla"):
        ctx["result"] = result
        if panel == "hubspot" and result.status == "ok":  # the sessions agents attached to each ticket
            from supportlens.crmnotes.service import sessions_by_ticket

            ticket_ids = [str(t["id"]) for i in result.items for t in i.get("tickets") or []]
            ctx["attached"] = await sessions_by_ticket(db, ticket_ids)
        await audit_search(db, request, principal, query, f"panel:{panel}", {"status": result.status})
        await history.update_counts(db, principal.agent.id, query, {panel: len(result.items)})
        return render(request, f"search/_{panel}.html", ctx)
    if panel == "summary":
        result = await service.source("dwolla", query, refresh=refresh)
        ctx["result"] = result
        ctx["summary"] = await _summary(request, db, principal, query, result)
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
