"""Typed dependencies: the database session, the signed-in agent, role checks and CSRF."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.auth import service
from supportlens.auth.models import ROLE_RANK, Agent, AgentSession, Role
from supportlens.auth.throttle import LoginThrottle
from supportlens.config import Settings
from supportlens.db.engine import autocommit
from supportlens.deps import per_app
from supportlens.problems import ProblemError

SESSION_COOKIE = "sl_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_settings_dep(request: Request) -> Settings:
    # async: FastAPI runs a plain `def` dependency on its thread pool, a thread hop on every request
    return request.app.state.settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbDep = Annotated[AsyncSession, Depends(get_db)]


class LoginRequired(Exception):
    """Raised for a request without a valid agent; pages redirect to /login, APIs answer 401."""


@dataclass
class Principal:
    agent: Agent
    via: str  # "session" | "token"
    session: AgentSession | None = None

    @property
    def role(self) -> Role:
        return self.agent.role_enum

    def has_role(self, minimum: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[minimum]

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token if self.session else ""


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise ProblemError(403, "CSRF check failed", "missing or wrong CSRF token", field=CSRF_FIELD)


async def get_principal(request: Request, db: DbDep, settings: SettingsDep) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal: Principal | None = None
    await autocommit(db)  # one SELECT (and at times one UPDATE): no BEGIN/COMMIT round trips
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        agent = await service.resolve_api_token(db, auth[7:].strip())
        if agent is None:
            raise ProblemError(401, "Invalid API token", headers={"WWW-Authenticate": "Bearer"})
        principal = Principal(agent=agent, via="token")
    else:
        raw = request.cookies.get(SESSION_COOKIE)
        session = await service.resolve_session(db, raw, settings) if raw else None
        if session is None:
            raise LoginRequired()
        principal = Principal(agent=session.agent, via="session", session=session)
        if request.method in UNSAFE_METHODS:
            await _check_csrf(request, session.csrf_token)
    request.state.principal = principal
    request.state.agent = principal.agent
    # End the sign-in check's transaction: it gives the pooled connection back, so a
    # request that then waits seconds on HubSpot or Dwolla does not hold one (pool exhaustion
    # under load). The next query opens a new transaction; loaded objects stay usable.
    await db.commit()
    return principal


def require_role(minimum: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.has_role(minimum):
            raise ProblemError(403, "Forbidden", f"this needs the {minimum.value} role")
        return principal

    dependency.required_role = minimum  # type: ignore[attr-defined]
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(require_role(Role.viewer))]
AgentPrincipal = Annotated[Principal, Depends(require_role(Role.agent))]
AdminPrincipal = Annotated[Principal, Depends(require_role(Role.admin))]

# Failed sign-ins per account and per address: one per app (memory) or shared through Redis.
LoginThrottleDep = Annotated[LoginThrottle, Depends(per_app("login_throttle", LoginThrottle))]
