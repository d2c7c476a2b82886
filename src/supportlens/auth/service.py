"""Agent accounts, sign-in sessions and API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.auth.models import Agent, AgentSession, ApiToken, Role
from supportlens.auth.passwords import hash_password, password_problem, verify_password
from supportlens.auth.tokens import hash_secret, new_secret
from supportlens.config import Settings
from supportlens.db.base import utcnow

SESSION_PREFIX = "sls_"
API_TOKEN_PREFIX = "slt_"  # noqa: S105 (a prefix, not a secret)
# last_seen_at is written at most this often, so each request does not cost a write.
TOUCH_EVERY = timedelta(seconds=60)


class AgentError(ValueError):
    """A problem with the caller's input, with the field it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_agent_by_email(db: AsyncSession, email: str) -> Agent | None:
    return await db.scalar(select(Agent).where(Agent.email == normalize_email(email)))


async def create_agent(
    db: AsyncSession,
    *,
    email: str,
    role: str,
    name: str = "",
    password: str | None = None,
    commit: bool = True,
) -> Agent:
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AgentError("email", str(exc)) from None
    if role not in {r.value for r in Role}:
        raise AgentError("role", f"must be one of {', '.join(r.value for r in Role)}")
    if len(name) > 200:
        raise AgentError("name", "must be at most 200 characters")
    if password is not None and (problem := password_problem(password)):
        raise AgentError("password", problem)
    if await get_agent_by_email(db, email):
        raise AgentError("email", "an agent with this e-mail already exists")
    agent = Agent(
        email=email, role=role, name=name, password_hash=hash_password(password) if password else None
    )
    db.add(agent)
    if commit:
        await db.commit()
    else:
        await db.flush()
    return agent


async def authenticate(db: AsyncSession, email: str, password: str) -> Agent | None:
    agent = await get_agent_by_email(db, email)
    ok = verify_password(agent.password_hash if agent else None, password)
    if agent is None or not ok or not agent.active:
        return None
    return agent


@dataclass
class NewSession:
    cookie_value: str
    session: AgentSession


async def start_session(
    db: AsyncSession, agent: Agent, settings: Settings, *, ip: str | None, user_agent: str | None
) -> NewSession:
    raw = new_secret(SESSION_PREFIX)
    now = utcnow()
    session = AgentSession(
        agent_id=agent.id,
        token_hash=hash_secret(raw),
        csrf_token=new_secret("", 24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        ip=ip,
        user_agent=(user_agent or "")[:512],
    )
    agent.last_login_at = now
    db.add(session)
    await db.commit()
    return NewSession(raw, session)


async def resolve_session(db: AsyncSession, raw: str, settings: Settings) -> AgentSession | None:
    """The live session for a cookie value, touched; None when unknown, revoked, idle or expired."""
    if not raw.startswith(SESSION_PREFIX) or len(raw) > 128:
        return None
    session = await db.scalar(select(AgentSession).where(AgentSession.token_hash == hash_secret(raw)))
    if session is None or session.revoked_at is not None or not session.agent.active:
        return None
    now = utcnow()
    idle_limit = timedelta(minutes=settings.session_idle_minutes)
    if now >= session.expires_at or now - session.last_seen_at > idle_limit:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        session.last_seen_at = now
        await db.commit()
    return session


async def end_session(db: AsyncSession, session: AgentSession) -> None:
    session.revoked_at = utcnow()
    await db.commit()


async def create_api_token(db: AsyncSession, agent: Agent, name: str = "cli") -> str:
    raw = new_secret(API_TOKEN_PREFIX)
    db.add(ApiToken(agent_id=agent.id, name=name[:100], prefix=raw[:10], token_hash=hash_secret(raw)))
    await db.commit()
    return raw


async def resolve_api_token(db: AsyncSession, raw: str) -> Agent | None:
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 128:
        return None
    token = await db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(raw)))
    now = utcnow()
    if token is None or token.revoked_at is not None or not token.agent.active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        await db.commit()
    return token.agent


async def revoke_sessions(db: AsyncSession, agent_id: uuid.UUID, when: datetime | None = None) -> None:
    sessions = await db.scalars(
        select(AgentSession).where(AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None))
    )
    for s in sessions:
        s.revoked_at = when or utcnow()
    await db.commit()


async def count_agents(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(Agent)) or 0)
