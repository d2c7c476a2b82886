"""Links between sessions and customers, with the evidence behind each."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, JSONType, UUIDPrimaryKey, utcnow


class SessionCustomerMapping(UUIDPrimaryKey, Base):
    __tablename__ = "session_customer_mapping"
    __table_args__ = (
        UniqueConstraint("session_id", "customer_email", name="uq_session_customer_mapping_session_email"),
        Index("ix_session_customer_mapping_session_id", "session_id"),
        Index("ix_session_customer_mapping_customer_email_confidence", "customer_email", "confidence_score"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"))
    customer_email: Mapped[str] = mapped_column(String(254))
    confidence_score: Mapped[float] = mapped_column(Float)
    # email_match | device_link | ip_match | time_proximity | manual
    mapping_method: Mapped[str] = mapped_column(String(50))
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Manual decisions: "link" or "unlink"; they win over every automatic result.
    manual_decision: Mapped[str | None] = mapped_column(String(8), nullable=True)
    decided_by_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
