"""The admin pages for agents: invite, roles, deactivation, set-password links, two-step resets."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth import agent_admin, service
from supportlens.auth.deps import (
    AdminPrincipal,
    DbDep,
    LoginThrottleDep,
    Principal,
    SettingsDep,
)
from supportlens.auth.models import Agent, Role
from supportlens.auth.views import redirect_with
from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.problems import ProblemError
from supportlens.web.pages import render, wants_html

router = APIRouter(tags=["auth"])


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
async def admin_home(request: Request, principal: AdminPrincipal) -> HTMLResponse:
    return render(request, "admin/index.html", {"sections": ADMIN_SECTIONS})


async def _agents_page(
    request: Request,
    db: DbDep,
    settings: Settings,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
    new_link: tuple[Agent, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    from sqlalchemy import select

    agents = (await db.scalars(select(Agent).order_by(Agent.email))).all()
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
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    notice: str = "",
    error: str = "",
) -> HTMLResponse:
    return await _agents_page(request, db, settings, notice=notice, error=error)


async def _admin_target(db: DbDep, agent_id: uuid.UUID) -> Agent:
    target = await db.get(Agent, agent_id)
    if target is None:
        raise ProblemError(404, "Agent not found")
    return target


def _back(notice: str = "", error: str = "") -> RedirectResponse:
    return redirect_with("/admin/agents", notice, error)


async def _refuse(
    request: Request,
    db: DbDep,
    settings: Settings,
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """A refused admin write: the agents page with the reason for a browser, problem details otherwise."""
    if wants_html(request):
        return await _agents_page(request, db, settings, error=detail, status_code=status, form=form)
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


def _sign_in_refusal(settings: Settings, sign_in: str) -> tuple[str, str] | None:
    """Why an invitation's sign-in method cannot work here (title, detail), or None when it can."""
    if sign_in not in ("sso", "link"):
        return "Invalid sign-in method", "sign_in must be sso or link"
    if sign_in == "sso" and not settings.oidc_enabled:
        return (
            "Single sign-on is off",
            "Single sign-on is not turned on, so an SSO-only agent could never sign in. "
            "Invite with a set-password link instead.",
        )
    if sign_in == "link" and not settings.local_login_enabled:
        return "Password sign-in is off", "Password sign-in is turned off; invite for single sign-on instead."
    return None


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
    refusal = _sign_in_refusal(settings, sign_in)
    if refusal is not None:
        title, detail = refusal
        return await _refuse(request, db, settings, 400, title, detail, field="sign_in", form=form)
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
        return await _refuse(request, db, settings, status, title, detail, field=exc.field, form=form)
    except IntegrityError:  # the same e-mail invited at the same moment by another admin
        await _discard(request, db)
        return await _refuse(
            request,
            db,
            settings,
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
        settings,
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
        return await _refuse(
            request, db, settings, 400, "Password sign-in is off", "Password sign-in is turned off."
        )
    if not target.active:
        return await _refuse(
            request,
            db,
            settings,
            409,
            "Agent is deactivated",
            f"{target.email} is deactivated; reactivate it first.",
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
        settings,
        notice=f"New set-password link for {target.email}; earlier links no longer work.",
        new_link=(target, agent_admin.link_url(settings.base_url, raw)),
        status_code=201,
    )


@router.post("/admin/agents/{agent_id}/deactivate", include_in_schema=False)
async def admin_deactivate(
    request: Request, agent_id: uuid.UUID, db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> Response:
    """Turn an account off: its sessions, API tokens and set-password links end at once."""
    target = await _admin_target(db, agent_id)
    if not target.active:
        return _back(notice=f"{target.email} is already deactivated.")
    try:
        ended = await agent_admin.deactivate(db, principal.agent, target)
    except agent_admin.AdminRefused as exc:
        await _audit_refusal(request, db, "agent_deactivated", principal.agent, target, exc.reason)
        return await _refuse(
            request, db, settings, exc.status, "Deactivation refused", exc.message, field=exc.field
        )
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
    settings: SettingsDep,
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
            return await _refuse(
                request, db, settings, exc.status, "Role change refused", exc.message, field="role"
            )
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
    request: Request, agent_id: uuid.UUID, db: DbDep, throttle: LoginThrottleDep, principal: AdminPrincipal
) -> Response:
    target = await _admin_target(db, agent_id)
    target.locked_until = None
    target.failed_logins = 0
    await throttle.unlock(target.email)
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
