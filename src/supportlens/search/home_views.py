"""The agent's home page: the unified customer search (`/` and the shareable `/?q=`); the rest of
the search page's routes are in `views.py`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from supportlens.auth.deps import CurrentPrincipal, DbDep, SettingsDep
from supportlens.customers.query import MAX_QUERY_LENGTH, parse_query
from supportlens.problems import ProblemError
from supportlens.search import history
from supportlens.search.views import audit_search
from supportlens.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, principal: CurrentPrincipal, db: DbDep, settings: SettingsDep, q: str = ""
) -> HTMLResponse:
    ctx: dict[str, Any] = {"query": q[:MAX_QUERY_LENGTH], "search": None, "search_error": None}
    if q.strip():
        try:
            search = parse_query(q)
        except ProblemError as exc:
            ctx["search_error"] = exc.detail
        else:
            ctx["search"] = search
            ctx["query"] = search.text
            await history.record(db, principal.agent.id, search, commit=False)
            await audit_search(db, settings, request, principal, search, "page")
    ctx["history"] = await history.recent(db, principal.agent.id)
    return render(request, "home.html", ctx)
