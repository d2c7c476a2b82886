"""Sites that send events, the Clarity sessions they report, events and agents' notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, JSONType, UUIDPrimaryKey, utcnow


class IngestSite(UUIDPrimaryKey, Base):
    """A company website allowed to send events with its public site key (stored hashed)."""

    __tablename__ = "ingest_sites"

    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    allowed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    clarity_project_id: Mapped[str] = mapped_column(String(64), default="")
    require_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UserSession(UUIDPrimaryKey, Base):
    """One Clarity session: (projectId, userId, sessionId) as the tracker reported them."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        UniqueConstraint(
            "clarity_project_id", "clarity_user_id", "clarity_session_id", name="uq_user_sessions_clarity"
        ),
        Index("ix_user_sessions_customer_email_session_start", "customer_email", "session_start"),
        Index("ix_user_sessions_clarity_user_id_session_start", "clarity_user_id", "session_start"),
        Index("ix_user_sessions_client_ip_session_start", "client_ip", "session_start"),
        Index("ix_user_sessions_session_start", "session_start"),
        Index(
            "ix_user_sessions_automated_site_start",
            "site_id",
            "session_start",
            postgresql_where=text("automated IS NOT NULL"),
        ),
    )

    site_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ingest_sites.id", ondelete="SET NULL"), nullable=True
    )
    clarity_project_id: Mapped[str] = mapped_column(String(64))
    clarity_user_id: Mapped[str] = mapped_column(String(64))
    clarity_session_id: Mapped[str] = mapped_column(String(64))
    # The customer the site itself named (identify); other links live in session_customer_mapping.
    customer_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    customer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    customer_external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    session_start: Mapped[datetime]
    session_end: Mapped[datetime]
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    page_views: Mapped[int] = mapped_column(Integer, default=0)
    # page_views = max(highest Clarity pageNum, navigations seen incl. single-page-app route changes)
    navigation_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    page_num_max: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    entry_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    click_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    rage_click_count: Mapped[int] = mapped_column(Integer, default=0)
    dead_click_count: Mapped[int] = mapped_column(Integer, default=0)
    max_scroll_depth: Mapped[int] = mapped_column(Integer, default=0)
    recording_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    heatmap_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    device_type: Mapped[str] = mapped_column(String(16), default="desktop")
    browser: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent_analytics: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Automated traffic (sessions/automation.py): why, kept for good once set; such a session is never
    # a customer's. human_interaction: whether the page saw a person act yet (None: it did not say).
    automated: Mapped[str | None] = mapped_column(String(16), nullable=True)
    human_interaction: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    clarity_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    clarity_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionEvent(Base):
    """One thing the customer did. `id` is the tracker's event id, which makes retries idempotent."""

    __tablename__ = "session_events"
    __table_args__ = (Index("ix_session_events_session_id_timestamp", "session_id", "timestamp"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(32))
    event_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timestamp: Mapped[datetime]
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    element_selector: Mapped[str | None] = mapped_column(Text, nullable=True)
    x: Mapped[int | None] = mapped_column(Integer, nullable=True)
    y: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SessionAnnotation(UUIDPrimaryKey, Base):
    """An agent's note at a moment of a session."""

    __tablename__ = "session_annotations"
    __table_args__ = (Index("ix_session_annotations_session_id_timestamp", "session_id", "timestamp"),)

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    timestamp: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))  # issue | opportunity | observation
    severity: Mapped[str] = mapped_column(String(8))  # low | medium | high
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)


# A session's link to a customer: written by the mapping engine (mapping/engine.py) and by agents'
# decisions (mapping/decisions.py), read wherever a customer's sessions are listed.
class SessionCustomerMapping(UUIDPrimaryKey, Base):
    __tablename__ = "session_customer_mapping"
    __table_args__ = (
        UniqueConstraint("session_id", "customer_email", name="uq_session_customer_mapping_session_email"),
        Index("ix_session_customer_mapping_session_id", "session_id"),
        Index("ix_session_customer_mapping_customer_email_confidence", "customer_email", "confidence_score"),
        Index(
            "ix_session_customer_mapping_customer_email_session_start",
            "customer_email",
            "session_start",
            "session_id",
        ),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    customer_email: Mapped[str] = mapped_column(String(254))
    confidence_score: Mapped[float] = mapped_column(Float)
    # email_match | device_link | ip_match | time_proximity | manual
    mapping_method: Mapped[str] = mapped_column(String(50))
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Manual decisions: "link" or "unlink"; they win over every automatic result. Confirming a possible
    # session (sessions/possible.py) is a "link", dismissing one an "unlink": no state of their own.
    manual_decision: Mapped[str | None] = mapped_column(String(8), nullable=True)
    decided_by_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the engine said before the first manual decision (None: it had no link): the decision is
    # then a label for that prediction (mapping/calibration.py).
    auto_method: Mapped[str | None] = mapped_column(String(50), nullable=True)
    auto_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Copy of user_sessions.session_start (the list's sort key), kept by triggers (0009_session_links).
    session_start: Mapped[datetime | None] = mapped_column(nullable=True)
