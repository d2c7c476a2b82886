"""Sign-in: the login page, two-step sign-in at login, logout and the signed-in agent."""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth import service, totp
from supportlens.auth.deps import (
    SESSION_COOKIE,
    CurrentPrincipal,
    DbDep,
    LoginRequired,
    LoginThrottleDep,
    Principal,
    SettingsDep,
    get_principal,
)
from supportlens.auth.models import Agent
from supportlens.auth.throttle import Lock, LoginThrottle
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


def login_csrf_ok(request: Request, sent: str) -> bool:
    """The sign-in forms' CSRF check (before a session exists): the form echoes the cookie's token."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected and sent) and hmac.compare_digest(expected, sent)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(
    request: Request, settings: SettingsDep, next: str = "", expired: bool = False, password_set: bool = False
) -> Response:
    notice = (
        "Your session ended after 30 minutes without activity. Please sign in again." if expired else None
    )
    if password_set:
        notice = "Your password is set. Sign in with it now."
    return _login_page(request, settings, next_url=safe_next(next) if next else "", notice=notice)


@router.post("/login", include_in_schema=False)
async def login_submit(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not login_csrf_ok(request, csrf_token):
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
    ip = audit.client_ip(request)
    known = await service.get_agent_by_email(db, email)
    lock = await throttle.check(email, ip)
    if lock is None and known is not None and known.locked_until and known.locked_until > utcnow():
        lock = Lock("account", known.locked_until)
    if lock is not None:
        await audit.record(
            db,
            "login_refused_locked",
            request=request,
            actor=known,
            actor_email=email.strip().lower()[:254],
            target_type="agent",
            target=str(known.id) if known else None,
            outcome="denied",
            detail={"scope": lock.scope},
        )
        return _login_page(
            request, settings, error=lock.message(), email=email, next_url=next, status_code=429
        )
    agent = await service.authenticate(db, email, password)
    if agent is None:
        return await _failed_login(request, db, settings, throttle, email=email, known=known, next_url=next)
    if agent.totp_secret:
        pending = totp.sign(settings, "login-2fa", {"a": str(agent.id), "n": safe_next(next)})
        response = RedirectResponse("/login/totp", status_code=303)
        response.set_cookie(
            totp.PENDING_COOKIE,
            pending,
            httponly=True,
            samesite="lax",
            secure=settings.cookies_secure,
            max_age=totp.PENDING_MAX_AGE,
            path="/login",
        )
        return response
    return await complete_login(
        request, db, settings, agent, method="password", next_url=next, throttle=throttle
    )


async def _failed_login(
    request: Request,
    db: DbDep,
    settings: Settings,
    throttle: LoginThrottle,
    *,
    email: str,
    known: Agent | None,
    next_url: str,
    factor: str = "password",
    page: str = "login",
) -> Response:
    """Count the failure (account and IP), audit it, lock when the budget is spent."""
    if known is not None:
        known.failed_logins += 1
    await audit.record(
        db,
        "login_failed",
        request=request,
        actor=known,
        actor_email=email.strip().lower()[:254],
        target_type="agent",
        target=str(known.id) if known else None,
        outcome="denied",
        detail={"factor": factor},
    )
    lock = await throttle.failed(email, audit.client_ip(request))
    message = "Wrong e-mail or password." if factor == "password" else "That code is not right. Try again."
    status = 401
    if lock is not None:
        if known is not None and lock.scope == "account":
            known.locked_until = lock.until
        await audit.record(
            db,
            "account_locked" if lock.scope == "account" else "ip_locked",
            request=request,
            actor=known,
            actor_email=email.strip().lower()[:254],
            target_type="agent" if lock.scope == "account" else "ip",
            target=str(known.id) if known and lock.scope == "account" else audit.client_ip(request),
            outcome="denied",
            detail={"scope": lock.scope, "minutes": settings.login_lockout_minutes},
        )
        message, status = lock.message(), 429
    if page == "totp":
        return _totp_page(request, settings, error=message, status_code=status)
    return _login_page(request, settings, error=message, email=email, next_url=next_url, status_code=status)


async def complete_login(
    request: Request,
    db: DbDep,
    settings: Settings,
    agent: Agent,
    *,
    method: str,
    next_url: str,
    throttle: LoginThrottle,
) -> Response:
    """Start the agent's session (password, password+TOTP or single sign-on), audit it, set the cookie."""
    agent.failed_logins = 0
    agent.locked_until = None
    await throttle.succeeded(agent.email)
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
        detail={"method": method},
    )
    response = RedirectResponse(safe_next(next_url), status_code=303)
    set_session_cookie(response, new.cookie_value, settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    response.delete_cookie(totp.PENDING_COOKIE, path="/login")
    return response


def _totp_page(
    request: Request, settings: Settings, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request, "auth/login_totp.html", {"error": error, "login_csrf": token}, status_code=status_code
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=settings.cookies_secure, max_age=3600
    )
    return response


async def _pending_agent(request: Request, db: DbDep, settings: Settings) -> tuple[Agent | None, str]:
    pending = totp.unsign(
        settings, "login-2fa", request.cookies.get(totp.PENDING_COOKIE), totp.PENDING_MAX_AGE
    )
    if pending is None:
        return None, "/"
    try:
        agent_id = uuid.UUID(str(pending.get("a")))
    except ValueError:
        return None, "/"
    agent = await db.get(Agent, agent_id)
    if agent is None or not agent.active or not agent.totp_secret:
        return None, "/"
    return agent, safe_next(str(pending.get("n") or "/"))


@router.get("/login/totp", response_class=HTMLResponse, include_in_schema=False)
async def login_totp_form(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    agent, _ = await _pending_agent(request, db, settings)
    if agent is None:
        return RedirectResponse("/login", status_code=303)
    return _totp_page(request, settings)


@router.post("/login/totp", include_in_schema=False)
async def login_totp_submit(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    code: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not login_csrf_ok(request, csrf_token):
        return _totp_page(
            request, settings, error="Your sign-in form expired. Please try again.", status_code=403
        )
    agent, next_url = await _pending_agent(request, db, settings)
    if agent is None:
        return RedirectResponse("/login", status_code=303)
    lock = await throttle.check(agent.email, audit.client_ip(request))
    if lock is not None:
        return _totp_page(request, settings, error=lock.message(), status_code=429)
    if not totp.verify_for_agent(settings, agent, code):
        return await _failed_login(
            request,
            db,
            settings,
            throttle,
            email=agent.email,
            known=agent,
            next_url=next_url,
            factor="totp",
            page="totp",
        )
    return await complete_login(
        request, db, settings, agent, method="password+totp", next_url=next_url, throttle=throttle
    )


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


def login_redirect(request: Request, _: LoginRequired) -> Response:
    """Pages send the browser to the login page; had a session cookie, say it expired."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}{expired}", status_code=303)


def redirect_with(path: str, notice: str = "", error: str = "") -> RedirectResponse:
    """303 back to a page, with its one-line notice or error in the query string."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


__all__ = ["login_redirect", "redirect_with", "router", "set_session_cookie", "utcnow"]
