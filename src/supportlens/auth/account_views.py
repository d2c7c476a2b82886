"""An agent's own account: the one-time set-password page and two-step sign-in (TOTP)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth import agent_admin, totp
from supportlens.auth.deps import (
    CurrentPrincipal,
    DbDep,
    LoginThrottleDep,
    SettingsDep,
)
from supportlens.auth.models import Agent
from supportlens.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from supportlens.auth.views import LOGIN_CSRF_COOKIE, login_csrf_ok, redirect_with
from supportlens.config import Settings
from supportlens.web.pages import render

router = APIRouter(tags=["auth"])


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
    throttle: LoginThrottleDep,
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
    await throttle.unlock(done.agent.email)
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
    return redirect_with("/account/security", notice, error)


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
