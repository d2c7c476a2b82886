"""Agents, their browser sessions and API tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supportlens.db.base import Base, UUIDPrimaryKey, utcnow


class Role(enum.StrEnum):
    admin = "admin"
    agent = "agent"
    viewer = "viewer"


# Higher rank includes the rights of the lower ones.
ROLE_RANK = {Role.viewer: 0, Role.agent: 1, Role.admin: 2}


class Agent(UUIDPrimaryKey, Base):
    __tablename__ = "agents"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.agent.value)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # AES-GCM encrypted (auth/totp.py); None when the second factor is off.
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The last accepted TOTP time step: a code is accepted once only (no replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The agent's colour scheme: light, dark or system (follow prefers-color-scheme); auth/theme.py.
    theme: Mapped[str] = mapped_column(String(8), default="system", server_default="system")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="agent", cascade="all, delete-orphan")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class AgentSession(UUIDPrimaryKey, Base):
    """A signed-in browser. Kept server-side so logout and idle expiry hold on every replica."""

    __tablename__ = "agent_sessions"
    __table_args__ = (Index("ix_agent_sessions_agent_id", "agent_id"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    agent: Mapped[Agent] = relationship(lazy="joined")


class ApiToken(UUIDPrimaryKey, Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_agent_id", "agent_id"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    agent: Mapped[Agent] = relationship(back_populates="tokens", lazy="joined")


class PasswordLink(UUIDPrimaryKey, Base):
    """A one-time link to set a password, given to an invited agent by the admin who invited them.

    Only the SHA-256 of the link's secret is kept (auth/tokens.py); the link works once, until
    `expires_at`, and only while its agent is active. Deactivation and a newer link revoke it.
    """

    __tablename__ = "agent_password_links"
    __table_args__ = (Index("ix_agent_password_links_agent_id", "agent_id"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
