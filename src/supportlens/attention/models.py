"""Dwolla's webhook events as received (each stored once), and the cases they put on the queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, UUIDPrimaryKey, utcnow

CASE_STATES = ("open", "taken", "closed")


class DwollaWebhookEvent(Base):
    """One Dwolla event, stored once: its id is the key, so a replay inserts nothing.

    Holds Dwolla's ids only (no e-mail, name or amount); `outcome` says what its job made of it."""

    __tablename__ = "dwolla_webhook_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    customer_dwolla_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created: Mapped[datetime]  # Dwolla's `created`
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))  # case | duplicate_transfer | ignored


class AttentionCase(UUIDPrimaryKey, Base):
    """A failed transfer an agent should look at: open → taken (assignee) → closed.

    One case per transfer (Dwolla sends a customer- and an account-level event for one failure)."""

    __tablename__ = "attention_cases"
    __table_args__ = (
        Index("ix_attention_cases_status_created_at", "status", "created_at"),
        Index("ix_attention_cases_customer_email", "customer_email"),
    )

    event_id: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    transfer_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_dwolla_id: Mapped[str | None] = mapped_column(String(64))
    customer_email: Mapped[str | None] = mapped_column(String(320))  # canonical
    customer_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    failure_code: Mapped[str | None] = mapped_column(String(8))
    failure_description: Mapped[str | None] = mapped_column(String(200))
    failed_at: Mapped[datetime]  # the event's `created`: when Dwolla said the transfer failed
    moment_session_id: Mapped[uuid.UUID | None]
    moment_kind: Mapped[str | None] = mapped_column(String(16))  # error | rage_click | dead_click
    moment_at: Mapped[datetime | None]
    moment_offset_ms: Mapped[int | None] = mapped_column(Integer)  # from the session's start
    status: Mapped[str] = mapped_column(String(8), default="open", server_default=text("'open'"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    taken_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
