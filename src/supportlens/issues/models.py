"""Issues: events grouped by fingerprint, their occurrences, counts per bucket and status history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, JSONType, utcnow

STATUSES = ("new", "acknowledged", "resolved", "regressed")
BUCKET_MINUTES = 5  # the resolution of counts: fine enough for spikes, summed into hours for charts


class Issue(Base):
    """One fingerprint: an error, a rage-click cluster or a dead-click cluster seen across sessions."""

    __tablename__ = "issues"
    __table_args__ = (
        CheckConstraint("status IN ('new', 'acknowledged', 'resolved', 'regressed')", name="status"),
        CheckConstraint("kind IN ('error', 'rage_click', 'dead_click')", name="kind"),
        Index("ix_issues_last_seen", "last_seen"),
        Index("ix_issues_status_last_seen", "status", "last_seen"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    # The normalised parts (placeholders, no customer data): message, page, frames, element.
    message: Mapped[str] = mapped_column(Text, default="")
    page: Mapped[str] = mapped_column(Text, default="")
    element: Mapped[str] = mapped_column(Text, default="")
    frames: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    event_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Sessions ever affected (retention deletes old occurrences, not this count).
    session_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Failed Dwolla transfers within 30 minutes of an occurrence, counted when the issue was last
    # opened (the list shows it; null: never counted). Dwolla is asked on the issue page only.
    failed_transfers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_transfers_checked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class IssueOccurrence(Base):
    """One grouped event. Its key is the event's id, so grouping the same event twice counts it once."""

    __tablename__ = "issue_occurrences"
    __table_args__ = (
        Index("ix_issue_occurrences_issue_id_occurred_at", "issue_id", "occurred_at"),
        Index("ix_issue_occurrences_session_id", "session_id"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    issue_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("issues.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
    page: Mapped[str] = mapped_column(Text)  # the page template


class IssueBucket(Base):
    """Occurrences of one issue on one page template in one bucket of BUCKET_MINUTES."""

    __tablename__ = "issue_buckets"
    __table_args__ = (Index("ix_issue_buckets_page_bucket_start", "page", "bucket_start"),)

    issue_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    page: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class IssueSession(Base):
    """A session an issue happened in (the first time): counts sessions once, finds examples."""

    __tablename__ = "issue_sessions"
    __table_args__ = (Index("ix_issue_sessions_session_id", "session_id"),)

    issue_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    first_seen: Mapped[datetime]


class IssueStatusChange(Base):
    """Every status change: by an agent, or by the system (agent_id null) when an issue regresses."""

    __tablename__ = "issue_status_changes"
    __table_args__ = (Index("ix_issue_status_changes_issue_id_changed_at", "issue_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    issue_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("issues.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class IssuePendingEvent(Base):
    """A stored error or click not grouped yet: written by ingest, deleted by the grouping job that
    groups it, in one transaction each (exactly once; a crashed job leaves it for the next)."""

    __tablename__ = "issue_pending_events"
    __table_args__ = (Index("ix_issue_pending_events_session_id", "session_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
