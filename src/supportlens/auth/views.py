"""Login and logout pages."""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth import agent_admin, service, totp
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
from supportlens.auth.models import Agent, Role
from supportlens.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from supportlens.auth.throttle import Lock, get_throttle
from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.problems import ProblemError
from supportlens.web.pages import render, wants_html

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
    throttle = get_throttle(request.app.state, settings)
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
        return await _failed_login(request, db, settings, email=email, known=known, next_url=next)
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
    return await complete_login(request, db, settings, agent, method="password", next_url=next)


async def _failed_login(
    request: Request,
    db: DbDep,
    settings: Settings,
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
    lock = await get_throttle(request.app.state, settings).failed(email, audit.client_ip(request))
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
    request: Request, db: DbDep, settings: Settings, agent: Agent, *, method: str, next_url: str
) -> Response:
    """Start the agent's session (password, password+TOTP or single sign-on), audit it, set the cookie."""
    agent.failed_logins = 0
    agent.locked_until = None
    await get_throttle(request.app.state, settings).succeeded(agent.email)
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
    lock = await get_throttle(request.app.state, settings).check(agent.email, audit.client_ip(request))
    if lock is not None:
        return _totp_page(request, settings, error=lock.message(), status_code=429)
    if not totp.verify_for_agent(settings, agent, code):
        return await _failed_login(
            request,
            db,
            settings,
            email=agent.email,
            known=agent,
            next_url=next_url,
            factor="totp",
            page="totp",
        )
    return await complete_login(request, db, settings, agent, method="password+totp", next_url=next_url)


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


async def _agents_page(
    request: Request,
    db: DbDep,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
    new_link: tuple[Agent, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    from sqlalchemy import select

    agents = (await db.scalars(select(Agent).order_by(Agent.email))).all()
    settings: Settings = request.app.state.settings
    response = render(
        request,
        "admin/agents.html",
        {
            "agents": agents,
            "roles": [r.value for r in Role],
            "now": utcnow(),
            "pending": await agent_admin.pending_links(db),
            "notice": notice[:200],
            "error": error[:300],
            "new_link": new_link,
            "form": form or {},
            "link_hours": int(agent_admin.LINK_LIFETIME.total_seconds() // 3600),
            "sso_enabled": settings.oidc_enabled,
            "local_enabled": settings.local_login_enabled,
        },
        status_code=status_code,
    )
    if new_link is not None:
        # The link is shown once: no copy of this page in any cache or in the browser's history store.
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/admin/agents", response_class=HTMLResponse, include_in_schema=False)
async def admin_agents(
    request: Request, db: DbDep, principal: AdminPrincipal, notice: str = "", error: str = ""
) -> HTMLResponse:
    return await _agents_page(request, db, notice=notice, error=error)


async def _admin_target(db: DbDep, agent_id: uuid.UUID) -> Agent:
    target = await db.get(Agent, agent_id)
    if target is None:
        raise ProblemError(404, "Agent not found")
    return target


def _redirect_with(path: str, notice: str = "", error: str = "") -> RedirectResponse:
    """303 back to a page, with its one-line notice or error in the query string."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def _back(notice: str = "", error: str = "") -> RedirectResponse:
    return _redirect_with("/admin/agents", notice, error)


async def _refuse(
    request: Request,
    db: DbDep,
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """A refused admin write: the agents page with the reason for a browser, problem details otherwise."""
    if wants_html(request):
        return await _agents_page(request, db, error=detail, status_code=status, form=form)
    raise ProblemError(status, title, detail, field=field)


async def _discard(request: Request, db: DbDep) -> None:
    """Roll back a half-done write, then reload the signed-in agent the page header shows."""
    await db.rollback()
    principal: Principal = request.state.principal
    await db.refresh(principal.agent)
    if principal.session is not None:
        await db.refresh(principal.session)


async def _audit_refusal(
    request: Request, db: DbDep, action: str, actor: Agent, target: Agent, reason: str, **detail: str
) -> None:
    await audit.record(
        db,
        action,
        request=request,
        actor=actor,
        target_type="agent",
        target=str(target.id),
        outcome="denied",
        detail={**detail, "reason": reason},
    )


@router.post("/admin/agents/invite", include_in_schema=False)
async def admin_invite(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=16)],
    sign_in: Annotated[str, Form(max_length=16)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Invite an agent: SSO-only (the identity provider vouches for the e-mail) or with a one-time
    set-password link shown once on the answer. The account, the link and the audit row are one
    transaction: a refused invitation stores nothing."""
    from sqlalchemy.exc import IntegrityError

    form = {"email": email, "role": role, "sign_in": sign_in, "name": name}
    if sign_in not in ("sso", "link"):
        return await _refuse(
            request,
            db,
            400,
            "Invalid sign-in method",
            "sign_in must be sso or link",
            field="sign_in",
            form=form,
        )
    if sign_in == "sso" and not settings.oidc_enabled:
        return await _refuse(
            request,
            db,
            400,
            "Single sign-on is off",
            "Single sign-on is not turned on, so an SSO-only agent could never sign in. "
            "Invite with a set-password link instead.",
            field="sign_in",
            form=form,
        )
    if sign_in == "link" and not settings.local_login_enabled:
        return await _refuse(
            request,
            db,
            400,
            "Password sign-in is off",
            "Password sign-in is turned off; invite for single sign-on instead.",
            field="sign_in",
            form=form,
        )
    try:
        agent = await service.create_agent(db, email=email, role=role, name=name.strip(), commit=False)
        raw = (
            await agent_admin.issue_password_link(db, agent, issued_by=principal.agent)
            if sign_in == "link"
            else None
        )
        await audit.record(
            db,
            "agent_invited",
            request=request,
            actor=principal.agent,
            target_type="agent",
            target=str(agent.id),
            detail={"role": agent.role, "sign_in": sign_in},
        )
    except service.AgentError as exc:
        duplicate = exc.field == "email" and "already exists" in exc.message
        status, title = (409, "Agent already exists") if duplicate else (400, "Invalid invitation")
        detail = (
            f"{service.normalize_email(email)} already has an account. Change its role or reactivate it "
            "in the list below."
            if duplicate
            else f"{exc.field}: {exc.message}"
        )
        return await _refuse(request, db, status, title, detail, field=exc.field, form=form)
    except IntegrityError:  # the same e-mail invited at the same moment by another admin
        await _discard(request, db)
        return await _refuse(
            request,
            db,
            409,
            "Agent already exists",
            f"{service.normalize_email(email)} already has an account.",
            field="email",
            form=form,
        )
    if raw is None:
        return _back(notice=f"Invited {agent.email} as {agent.role}: they sign in with single sign-on.")
    return await _agents_page(
        request,
        db,
        notice=f"Invited {agent.email} as {agent.role}.",
        new_link=(agent, agent_admin.link_url(settings.base_url, raw)),
        status_code=201,
    )


@router.post("/admin/agents/{agent_id}/password-link", include_in_schema=False)
async def admin_password_link(
    request: Request, agent_id: uuid.UUID, db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> Response:
    """A new one-time set-password link (a lost invitation, a forgotten password); older links die."""
    target = await _admin_target(db, agent_id)
    if not settings.local_login_enabled:
        return await _refuse(request, db, 400, "Password sign-in is off", "Password sign-in is turned off.")
    if not target.active:
        return await _refuse(
            request, db, 409, "Agent is deactivated", f"{target.email} is deactivated; reactivate it first."
        )
    raw = await agent_admin.issue_password_link(db, target, issued_by=principal.agent)
    await audit.record(
        db,
        "password_link_issued",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(target.id),
    )
    return await _agents_page(
        request,
        db,
        notice=f"New set-password link for {target.email}; earlier links no longer work.",
        new_link=(target, agent_admin.link_url(settings.base_url, raw)),
        status_code=201,
    )


@router.post("/admin/agents/{agent_id}/deactivate", include_in_schema=False)
async def admin_deactivate(
    request: Request, agent_id: uuid.UUID, db: DbDep, principal: AdminPrincipal
) -> Response:
    """Turn an account off: its sessions, API tokens and set-password links end at once."""
    target = await _admin_target(db, agent_id)
    if not target.active:
        return _back(notice=f"{target.email} is already deactivated.")
    try:
        ended = await agent_admin.deactivate(db, principal.agent, target)
    except agent_admin.AdminRefused as exc:
        await _audit_refusal(request, db, "agent_deactivated", principal.agent, target, exc.reason)
        return await _refuse(request, db, exc.status, "Deactivation refused", exc.message, field=exc.field)
    await audit.record(
        db,
        "agent_deactivated",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(target.id),
        detail={
            "sessions_ended": ended.sessions_ended,
            "tokens_revoked": ended.tokens_revoked,
            "links_revoked": ended.links_revoked,
        },
    )
    return _back(
        notice=f"{target.email} is deactivated: {ended.sessions_ended} session(s) ended, "
        f"{ended.tokens_revoked} API token(s) revoked."
    )


@router.post("/admin/agents/{agent_id}/reactivate", include_in_schema=False)
async def admin_reactivate(
    request: Request, agent_id: uuid.UUID, db: DbDep, principal: AdminPrincipal
) -> Response:
    """Turn an account back on. Sessions and API tokens ended by the deactivation stay ended."""
    target = await _admin_target(db, agent_id)
    if target.active:
        return _back(notice=f"{target.email} is already active.")
    target.active = True
    target.failed_logins = 0
    target.locked_until = None
    await audit.record(
        db,
        "agent_reactivated",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(target.id),
    )
    how = (
        "with their password or single sign-on" if target.password_hash else "once they have a way to sign in"
    )
    return _back(notice=f"{target.email} is active again and can sign in {how}.")


@router.post("/admin/agents/{agent_id}/role", include_in_schema=False)
async def admin_change_role(
    request: Request,
    agent_id: uuid.UUID,
    db: DbDep,
    principal: AdminPrincipal,
    role: Annotated[str, Form(max_length=16)],
) -> Response:
    """Change an agent's role (audited); nobody demotes themself or the last active administrator."""
    if role not in {r.value for r in Role}:
        raise ProblemError(
            400, "Invalid role", f"role must be one of {', '.join(r.value for r in Role)}", field="role"
        )
    target = await _admin_target(db, agent_id)
    old = target.role
    if old == role:
        return _back(notice=f"{target.email} already has the {role} role.")
    if old == Role.admin.value:
        try:
            await agent_admin.guard_admin_kept(db, principal.agent, target, action="demote")
        except agent_admin.AdminRefused as exc:
            await _audit_refusal(
                request, db, "role_change", principal.agent, target, exc.reason, **{"from": old, "to": role}
            )
            return await _refuse(request, db, exc.status, "Role change refused", exc.message, field="role")
    target.role = role
    await audit.record(
        db,
        "role_change",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(target.id),
        detail={"from": old, "to": role, "agent": target.email},
    )
    return _back(notice=f"{target.email} is now {role}.")


@router.post("/admin/agents/{agent_id}/unlock", include_in_schema=False)
async def admin_unlock(
    request: Request, agent_id: uuid.UUID, db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> Response:
    target = await _admin_target(db, agent_id)
    target.locked_until = None
    target.failed_logins = 0
    await get_throttle(request.app.state, settings).unlock(target.email)
    await audit.record(
        db,
        "account_unlocked",
        request=request,
        actor=principal.agent,
        target_type="agent",
        target=str(target.id),
    )
    return _back(notice=f"{target.email} can sign in again.")


@router.post("/admin/agents/{agent_id}/totp-reset", include_in_schema=False)
async def admin_totp_reset(
    request: Request, agent_id: uuid.UUID, db: DbDep, principal: AdminPrincipal
) -> Response:
    target = await _admin_target(db, agent_id)
    target.totp_secret = None
    target.totp_last_step = None
    await audit.record(
        db, "totp_reset", request=request, actor=principal.agent, target_type="agent", target=str(target.id)
    )
    return _back(notice=f"Two-step sign-in turned off for {target.email}.")


DEAD_LINK = (
    "This link does not work any more: it was used already, it expired, or a newer one replaced it. "
    "Ask an administrator for a new link."
)


def _set_password_page(
    request: Request,
    settings: Settings,
    *,
    agent: Agent | None,
    token: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "auth/set_password.html",
        {
            "target": agent,
            "token": token if agent is not None else "",
            "error": error,
            "dead": DEAD_LINK if agent is None else None,
            "login_csrf": csrf,
            "min_length": MIN_PASSWORD_LENGTH,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=settings.cookies_secure, max_age=3600
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/set-password/{token}", response_class=HTMLResponse, include_in_schema=False)
async def set_password_form(request: Request, token: str, db: DbDep, settings: SettingsDep) -> Response:
    """The page a one-time link opens (the access log names the route, never the link's secret)."""
    link = await agent_admin.live_link(db, token)
    agent = await db.get(Agent, link.agent_id) if link else None
    return _set_password_page(request, settings, agent=agent, token=token, status_code=200 if agent else 410)


@router.post("/set-password/{token}", include_in_schema=False)
async def set_password_submit(
    request: Request,
    token: str,
    db: DbDep,
    settings: SettingsDep,
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 1)] = "",
    password_confirm: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 1)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    # The link is checked before any argon2 work, so unknown links cost one indexed SELECT.
    link = await agent_admin.live_link(db, token)
    agent = await db.get(Agent, link.agent_id) if link else None
    if agent is None:
        return _set_password_page(request, settings, agent=None, token=token, status_code=410)
    if not login_csrf_ok(request, csrf_token):
        return _set_password_page(
            request,
            settings,
            agent=agent,
            token=token,
            error="The form expired. Please try again.",
            status_code=403,
        )
    if password != password_confirm:
        return _set_password_page(
            request, settings, agent=agent, token=token, error="The two passwords differ.", status_code=400
        )
    try:
        done = await agent_admin.redeem_password_link(db, token, password)
    except ValueError as exc:
        return _set_password_page(
            request, settings, agent=agent, token=token, error=f"The password {exc}.", status_code=400
        )
    if done is None:  # used by a concurrent submission, or expired, between the check and the claim
        return _set_password_page(request, settings, agent=None, token=token, status_code=410)
    await audit.record(
        db,
        "password_set",
        request=request,
        actor=done.agent,
        target_type="agent",
        target=str(done.agent.id),
        detail={"via": "one-time link", "sessions_ended": done.sessions_ended},
    )
    await get_throttle(request.app.state, settings).unlock(done.agent.email)
    return RedirectResponse("/login?password_set=1", status_code=303)


@router.get("/account/security", response_class=HTMLResponse, include_in_schema=False)
async def account_security(
    request: Request, settings: SettingsDep, principal: CurrentPrincipal, notice: str = "", error: str = ""
) -> HTMLResponse:
    """Two-step sign-in (TOTP) for local accounts: enrol with an authenticator app, or turn it off."""
    agent = principal.agent
    ctx: dict[str, object] = {
        "enrolled": bool(agent.totp_secret),
        "local": agent.password_hash is not None,
        "notice": notice[:200],
        "error": error[:200],
    }
    if not agent.totp_secret and agent.password_hash is not None:
        secret = totp.new_secret()
        uri = totp.provisioning_uri(secret, agent.email)
        ctx.update(
            secret=secret,
            secret_groups=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            otpauth_uri=uri,
            qr=totp.qr_svg_data_uri(uri),
            enrol_token=totp.sign(settings, "totp-enrol", {"a": str(agent.id), "s": secret}),
        )
    return render(request, "auth/account_security.html", ctx)


def _account_back(notice: str = "", error: str = "") -> RedirectResponse:
    return _redirect_with("/account/security", notice, error)


@router.post("/account/totp/enable", include_in_schema=False)
async def account_totp_enable(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    enrol_token: Annotated[str, Form(max_length=2000)],
    code: Annotated[str, Form(max_length=20)],
) -> Response:
    enrol = totp.unsign(settings, "totp-enrol", enrol_token, totp.ENROL_MAX_AGE)
    agent = await db.get(Agent, principal.agent.id)
    if enrol is None or agent is None or enrol.get("a") != str(agent.id):
        return _account_back(error="The enrolment expired. Scan the new code and try again.")
    if agent.password_hash is None:
        return _account_back(error="Two-step sign-in is for password accounts; single sign-on has its own.")
    secret = str(enrol.get("s", ""))
    step = totp.verify_code(secret, code)
    if step is None:
        return _account_back(error="That code is not right. Check the time on your phone and try again.")
    agent.totp_secret = totp.encrypt_secret(settings, secret)
    agent.totp_last_step = step
    await audit.record(
        db, "totp_enabled", request=request, actor=agent, target_type="agent", target=str(agent.id)
    )
    return _account_back(notice="Two-step sign-in is on. You will be asked for a code at each sign-in.")


@router.post("/account/totp/disable", include_in_schema=False)
async def account_totp_disable(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    code: Annotated[str, Form(max_length=20)],
) -> Response:
    agent = await db.get(Agent, principal.agent.id)
    if agent is None or not totp.verify_for_agent(settings, agent, code):
        return _account_back(error="That code is not right, so two-step sign-in stays on.")
    agent.totp_secret = None
    agent.totp_last_step = None
    await audit.record(
        db, "totp_disabled", request=request, actor=agent, target_type="agent", target=str(agent.id)
    )
    return _account_back(notice="Two-step sign-in is off.")


# (title, path, description): other domains append their admin pages here.
ADMIN_SECTIONS: list[tuple[str, str, str]] = [
    ("Agents", "/admin/agents", "Who can sign in, and with which role."),
    ("Audit log", "/admin/audit", "Who did what and when; filter and export."),
    ("Erase a customer", "/admin/erasure", "Delete everything held about one customer (GDPR erasure)."),
    (
        "Clarity connection",
        "/admin/clarity",
        "Token status, daily call budget, schedule and latest insights.",
    ),
    ("Conversion goals", "/admin/goals", "Pages and custom events that count as a conversion."),
    ("Sites", "/admin/sites", "Websites that send sessions: site keys, allowed origins, revocation."),
    ("Link accuracy", "/admin/mapping", "How right automatic links are, judged by agents' decisions."),
    ("Spike alerts", "/admin/alerts", "The webhook spike alerts are posted to, and its recent deliveries."),
    ("Dwolla webhooks", "/admin/webhooks", "The subscription that sends failed payments to Needs attention."),
]


def login_redirect(request: Request, _: LoginRequired) -> Response:
    """Pages send the browser to the login page; had a session cookie, say it expired."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(safe_next(target), safe='')}{expired}", status_code=303)


__all__ = ["login_redirect", "router", "set_session_cookie", "utcnow"]
