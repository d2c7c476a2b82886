"""One row per HubSpot note made from a session: the idempotency key and what the note was made from."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, UUIDPrimaryKey, utcnow


class HubSpotNoteLink(UUIDPrimaryKey, Base):
    """A session (at a moment, for a ticket, or neither) → the HubSpot note made from it.

    (session, ticket, moment) is unique, NULLs equal: adding the same again finds this row. A row with
    no `note_id` is pending: it is written before HubSpot is called, and `nonce` is in the note's
    SupportLens link, so a retry after a failure between HubSpot's answer and our commit finds the note
    on the contact instead of making a second one. No customer e-mail is kept: `customer_ref` is the
    audit log's keyed hash of it, which erasure matches.
    """

    __tablename__ = "hubspot_note_links"
    __table_args__ = (
        UniqueConstraint(
            "session_id",
            "ticket_id",
            "at_ms",
            name="uq_hubspot_note_links_key",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_hubspot_note_links_ticket_id", "ticket_id"),
        Index("ix_hubspot_note_links_customer_ref", "customer_ref"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contact_id: Mapped[str] = mapped_column(String(32))
    customer_ref: Mapped[str] = mapped_column(String(64))
    note_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    nonce: Mapped[str] = mapped_column(String(32))
    comment_sha256: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
