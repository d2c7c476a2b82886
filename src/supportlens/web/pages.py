"""Template rendering shared by every page (the signed-in agent, CSRF token, asset URLs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from supportlens.web.viewer import pii_filter

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def asset(path: str) -> str:
    """Relative URL of a static file, so pages work behind any proxy or host name."""
    return f"/static/{path}"


templates.env.globals["asset"] = asset
# `{{ value | pii("email") }}`: what a viewer may see of a customer's data (web/viewer.py).
templates.env.filters["pii"] = pii_filter


def wants_html(request: Request) -> bool:
    if request.url.path.startswith(("/api/", "/sdk/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    ctx: dict[str, Any] = {
        "principal": principal,
        "agent": principal.agent if principal else None,
        "csrf_token": principal.csrf_token if principal else "",
        "settings": request.app.state.settings,
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def render_error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)
