"""Spike alerts: the webhook an admin configures, each series' detector state, alerts and deliveries.

Nothing here is about a customer: a series is an issue or a page template (placeholders, no ids).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, JSONType, utcnow


class AlertWebhook(Base):
    """The one outbound webhook (row id 1). The signing secret is stored AES-GCM encrypted."""

    __tablename__ = "alert_webhook"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True
    )


class SpikeSeries(Base):
    """One detector series (`issue:<id>` or `page:<template>`): its state and the last bucket fed."""

    __tablename__ = "spike_series"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    issue_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("issues.id", ondelete="CASCADE"), nullable=True
    )
    page: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_bucket: Mapped[datetime]
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)


class SpikeAlert(Base):
    """A raised spike. Unique per (series, bucket): a detection run repeated raises nothing twice."""

    __tablename__ = "spike_alerts"
    __table_args__ = (
        Index("ix_spike_alerts_series_bucket", "series_key", "bucket_start", unique=True),
        Index("ix_spike_alerts_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    series_key: Mapped[str] = mapped_column(String(600))
    issue_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("issues.id", ondelete="CASCADE"), nullable=True
    )
    page: Mapped[str | None] = mapped_column(Text, nullable=True)
    bucket_start: Mapped[datetime]
    window_buckets: Mapped[int] = mapped_column(Integer)
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float]
    p_value: Mapped[float]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertDelivery(Base):
    """One message to the webhook and what became of it (every attempt counted)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_alert_deliveries_status", "status", "created_at"),
        Index("ix_alert_deliveries_dedup", "dedup_key", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # spike | weekly | test
    dedup_key: Mapped[str] = mapped_column(String(200))
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("spike_alerts.id", ondelete="CASCADE"), nullable=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
