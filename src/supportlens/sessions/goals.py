"""Conversion goals set by an admin: page URLs and custom event names that count as a conversion."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, UUIDPrimaryKey, utcnow

GOAL_KINDS = ("url", "event")


class ConversionGoal(UUIDPrimaryKey, Base):
    """`kind` url: a page whose URL contains `value` was reached; event: a custom event named `value`."""

    __tablename__ = "conversion_goals"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_conversion_goals_kind_value"),)

    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(500))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
