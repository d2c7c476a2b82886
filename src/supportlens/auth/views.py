"""Login and logout pages."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth import service
from supportlens.auth.deps import (
    SESSION_COOKIE,
    AdminPrincipal,
    CurrentPrincipal,
    DbDep,
    LoginRequired,
    Principal,
    SettingsDep,
    get_principal,
)
from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.web.pages import render

router = APIRouter(tags=["auth"])
LOGIN_CSRF_COOKIE = "sl_login_csrf"


def safe_next(value: str | None) -> str:
    """Only same-site relative paths; anything else (//evil, \\evil, absolute URLs) goes home."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 2000:
        return "/"
    if any(ord(c) < 32 for c in value):
        return "/"
    return value


def _login_page(
    request: Request,
    settings: Settings,
    *,
    error: str | None = None,
    email: str = "",
    next_url: str = "",
    status_code: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "notice": notice,
            "email": email,
            "next": next_url,
            "login_csrf": token,
            "sso_enabled": settings.oidc_enabled,
            "local_enabled": settings.local_login_enabled,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=settings.cookies_secure, max_age=3600
    )
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(
    request: Request, settings: SettingsDep, next: str = "", expired: bool = False
) -> Response:
    notice = (
        "Your session ended after 30 minutes without activity. Please sign in again." if expired else None
    )
    return _login_page(request, settings, next_url=safe_next(next) if next else "", notice=notice)


@router.post("/login", include_in_schema=False)
async def login_submit(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _login_page(
            request,
            settings,
            error="Your sign-in form expired. Please try again.",
            email=email,
            next_url=next,
            status_code=403,
        )
    if not settings.local_login_enabled:
        return _login_page(
            request, settings, error="Password sign-in is turned off; use single sign-on.", status_code=403
        )
    if not email.strip() or not password:
        return _login_page(
            request,
            settings,
            error="Enter your e-mail and password.",
            email=email,
            next_url=next,
            status_code=400,
        )
    agent = await service.authenticate(db, email, password)
    if agent is None:
        known = await service.get_agent_by_email(db, email)
        if known is not None:
            known.failed_logins += 1
        await audit.record(
            db,
            "login_failed",
            request=request,
            actor=known,
            actor_email=email.strip().lower()[:254],
            target_type="agent",
            outcome="denied",
        )
        return _login_page(
            request, settings, error="Wrong e-mail or password.", email=email, next_url=next, status_code=401
        )
    agent.failed_logins = 0
    new = await service.start_session(
        db, agent, settings, ip=audit.client_ip(request), user_agent=request.headers.get("user-agent")
    )
    await audit.record(
        db,
        "login",
        request=request,
        actor=agent,
        target_type="agent",
        target=str(agent.id),
        detail={"method": "password"},
    )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, new.cookie_value, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


def set_session_cookie(response: Response, value: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
    )


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request, db: DbDep, principal: Annotated[Principal, Depends(get_principal)]
) -> Response:
    if principal.session is not None:
        await service.end_session(db, principal.session)
    await audit.record(
        db,
        "logout",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(principal.agent.id),
    )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/me", include_in_schema=True, tags=["auth"])
async def me(principal: CurrentPrincipal) -> dict[str, str]:
    """The signed-in agent (session cookie or API token)."""
    a = principal.agent
    return {"id": str(a.id), "email": a.email, "name": a.name, "role": a.role, "via": principal.via}


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
async def admin_home(request: Request, principal: AdminPrincipal) -> HTMLResponse:
    return render(request, "admin/index.html", {"sections": ADMIN_SECTIONS})


@router.get("/admin/agents", response_class=HTMLResponse, include_in_schema=False)
async def admin_agents(request: Request, db: DbDep, principal: AdminPrincipal) -> HTMLResponse:
    from sqlalchemy import select

    from supportlens.auth.models import Agent

    agents = (await db.scalars(select(Agent).order_by(Agent.email))).all()
    return render(request, "admin/agents.html", {"agents": agents})


# (title, path, description): other domains append their admin pages here.
ADMIN_SECTIONS: list[tuple[str, str, str]] = [
    ("Agents", "/admin/agents", "Who can sign in, and with which role."),
]


def login_redirect(request: Request, _: LoginRequired) -> Response:
    """Pages send the browser to the login page; had a session cookie, say it expired."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}{expired}", status_code=303)


__all__ = ["login_redirect", "router", "set_session_cookie", "utcnow"]
