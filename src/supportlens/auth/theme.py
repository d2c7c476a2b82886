"""The agent's colour scheme: light, dark or system (follow the browser's prefers-color-scheme).

Kept on the agent row, so it follows the agent to any browser, and rendered into
`<html data-theme>` by base.html: the first paint already has the right colours, no flash.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from supportlens.auth.deps import CurrentPrincipal, DbDep
from supportlens.auth.models import Agent
from supportlens.problems import ProblemError

router = APIRouter(include_in_schema=False)

THEMES: tuple[str, ...] = ("light", "dark", "system")


def safe_next(path: str) -> str:
    """Only a path on this site: an open redirect would let a link bounce agents elsewhere."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 2000:
        return "/"
    return path


@router.post("/account/theme")
async def set_theme(
    request: Request,
    db: DbDep,
    principal: CurrentPrincipal,
    theme: Annotated[str, Form(max_length=16)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    if theme not in THEMES:
        raise ProblemError(400, "Unknown theme", "theme must be light, dark or system", field="theme")
    agent = await db.get(Agent, principal.agent.id)
    if agent is None:  # deleted between the sign-in check and here
        raise ProblemError(404, "Agent not found")
    agent.theme = theme
    await db.commit()
    if request.headers.get("x-csrf-token"):  # the toggle's fetch: the page already changed colour
        return Response(status_code=204)
    return RedirectResponse(safe_next(next) if next else _referring_page(request), status_code=303)


def _referring_page(request: Request) -> str:
    """Back to the page the form was on, read from Referer (sent in full on this site) rather than
    written into the form: a page's own address can name a customer, and viewers see PII masked."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
