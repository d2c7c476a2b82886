"""Administering agents: invitations, one-time set-password links, deactivation and the admin guard.

Model: an invited agent is an `Agent` row from the start. An SSO-only invitation has no password and
no link: the agent signs in through the identity provider, which matches the account by its verified
e-mail (auth/oidc.py). A password invitation also issues a `PasswordLink`: a random secret shown once to
the inviting admin, stored only as its SHA-256, dead after one use, after LINK_LIFETIME, when a newer
link is issued or when the agent is deactivated.

The admin guard keeps at least one active administrator: nobody demotes or deactivates themself, nor
the last active admin. The count locks the active admins' rows (SELECT … FOR UPDATE), so two admins
deactivating each other at the same moment are serialised and the second is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.auth.models import Agent, AgentSession, ApiToken, PasswordLink, Role
from supportlens.auth.passwords import hash_password, password_problem
from supportlens.auth.tokens import hash_secret, new_secret
from supportlens.db.base import utcnow

LINK_PREFIX = "slp_"
LINK_LIFETIME = timedelta(hours=72)
MAX_LINK_LENGTH = 128


class AdminRefused(Exception):
    """An admin action refused by a guard rail: the HTTP status, the field at fault and why."""

    def __init__(self, status: int, message: str, *, field: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.reason = reason or message


async def _active_admin_ids(db: AsyncSession) -> list[uuid.UUID]:
    rows = await db.scalars(
        select(Agent.id).where(Agent.role == Role.admin.value, Agent.active.is_(True)).with_for_update()
    )
    return list(rows)


async def guard_admin_kept(db: AsyncSession, actor: Agent, target: Agent, *, action: str) -> None:
    """Refuse (409) when `action` ("demote" or "deactivate") would leave no active administrator."""
    if target.id == actor.id:
        raise AdminRefused(
            409,
            f"You cannot {action} yourself. Ask another administrator.",
            reason="self",
        )
    if target.role == Role.admin.value and target.active:
        admins = await _active_admin_ids(db)
        if len(admins) <= 1 and target.id in admins:
            raise AdminRefused(
                409,
                f"{target.email} is the last active administrator and cannot be {action}d. "
                "Make someone else an admin first.",
                reason="last administrator",
            )


def link_url(base_url: str, raw: str) -> str:
    return f"{base_url.rstrip('/')}/set-password/{raw}"


async def issue_password_link(db: AsyncSession, agent: Agent, *, issued_by: Agent | None) -> str:
    """A new one-time link for `agent` (earlier ones die); returns the secret, never stored in clear."""
    now = utcnow()
    await db.execute(
        update(PasswordLink)
        .where(
            PasswordLink.agent_id == agent.id,
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    raw = new_secret(LINK_PREFIX)
    db.add(
        PasswordLink(
            agent_id=agent.id,
            token_hash=hash_secret(raw),
            created_by_id=issued_by.id if issued_by else None,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    await db.flush()
    return raw


def _well_formed(raw: str) -> bool:
    return raw.startswith(LINK_PREFIX) and len(raw) <= MAX_LINK_LENGTH


async def live_link(db: AsyncSession, raw: str) -> PasswordLink | None:
    """The link for this secret while it can still be used (unused, unrevoked, unexpired, agent active)."""
    if not _well_formed(raw):
        return None
    link = await db.scalar(
        select(PasswordLink).where(
            PasswordLink.token_hash == hash_secret(raw),
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
            PasswordLink.expires_at > utcnow(),
        )
    )
    if link is None:
        return None
    agent = await db.get(Agent, link.agent_id)
    return link if agent is not None and agent.active else None


@dataclass
class PasswordSet:
    agent: Agent
    sessions_ended: int


async def redeem_password_link(db: AsyncSession, raw: str, password: str) -> PasswordSet | None:
    """Set the password through a link, once: the link is claimed by a conditional UPDATE, so two
    submissions racing with the same link cannot both succeed. None when the link is not (or no
    longer) usable. Raises ValueError with the password rule broken. Commits nothing: the caller
    audits and commits in the same transaction."""
    if problem := password_problem(password):
        raise ValueError(problem)
    if not _well_formed(raw):
        return None
    now = utcnow()
    agent_id = await db.scalar(
        update(PasswordLink)
        .where(
            PasswordLink.token_hash == hash_secret(raw),
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
            PasswordLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(PasswordLink.agent_id)
    )
    agent = await db.get(Agent, agent_id) if agent_id else None
    if agent is None or not agent.active:
        await db.rollback()
        return None
    agent.password_hash = hash_password(password)
    agent.failed_logins = 0
    agent.locked_until = None
    ended = await _end_sessions(db, agent.id)
    return PasswordSet(agent, ended)


async def _end_sessions(db: AsyncSession, agent_id: uuid.UUID) -> int:
    result = await db.execute(
        update(AgentSession)
        .where(AgentSession.agent_id == agent_id, AgentSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class Deactivation:
    sessions_ended: int
    tokens_revoked: int
    links_revoked: int


async def deactivate(db: AsyncSession, actor: Agent, target: Agent) -> Deactivation:
    """Turn the account off and end, at once, everything it could still act with. Commits nothing."""
    await guard_admin_kept(db, actor, target, action="deactivate")
    now = utcnow()
    target.active = False
    sessions = await _end_sessions(db, target.id)
    tokens = await db.execute(
        update(ApiToken)
        .where(ApiToken.agent_id == target.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    links = await db.execute(
        update(PasswordLink)
        .where(
            PasswordLink.agent_id == target.id,
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return Deactivation(
        sessions_ended=sessions,
        tokens_revoked=int(getattr(tokens, "rowcount", 0) or 0),
        links_revoked=int(getattr(links, "rowcount", 0) or 0),
    )


async def pending_links(db: AsyncSession) -> dict[uuid.UUID, PasswordLink]:
    """Each agent's live set-password link (for the admin page's "link pending" status)."""
    rows = await db.scalars(
        select(PasswordLink).where(
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
            PasswordLink.expires_at > utcnow(),
        )
    )
    return {link.agent_id: link for link in rows}
