"""Per-agent search history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, UUIDPrimaryKey, utcnow


class SearchHistory(UUIDPrimaryKey, Base):
    __tablename__ = "search_history"
    __table_args__ = (
        Index("ix_search_history_agent_id_created_at", "agent_id", "created_at"),
        # one row per query: a query searched again is moved to the top by an upsert
        Index("uq_search_history_agent_id_normalized_query", "agent_id", "normalized_query", unique=True),
    )

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(String(256))
    normalized_query: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16))  # email | phone | name | company | id
    result_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
