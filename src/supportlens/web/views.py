"""The agent's pages that belong to no single domain (home)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from supportlens.auth.deps import CurrentPrincipal
from supportlens.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: CurrentPrincipal, q: str = "") -> HTMLResponse:
    return render(request, "home.html", {"query": q[:200]})
