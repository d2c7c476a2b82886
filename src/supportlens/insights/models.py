"""Clarity call budgets, stored insight snapshots and the connection status the admin sees."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, JSONType, UUIDPrimaryKey, utcnow


class ClarityCallBudget(Base):
    """Calls spent per project, API and UTC day. Incremented atomically BEFORE a call is sent."""

    __tablename__ = "clarity_call_budget"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api: Mapped[str] = mapped_column(String(16), primary_key=True)  # export | recordings
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls_used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaritySnapshot(UUIDPrimaryKey, Base):
    """One answer of the Data Export API, kept as it came (JSON) with what was asked."""

    __tablename__ = "clarity_snapshots"
    __table_args__ = (Index("ix_clarity_snapshots_project_id_pulled_at", "project_id", "pulled_at"),)

    project_id: Mapped[str] = mapped_column(String(64))
    pulled_at: Mapped[datetime] = mapped_column(default=utcnow)
    schedule: Mapped[str] = mapped_column(String(64))  # which pull (url_device, traffic, manual...)
    num_of_days: Mapped[int] = mapped_column(Integer)
    dimensions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    payload: Mapped[Any] = mapped_column(JSONType)
    metric_count: Mapped[int] = mapped_column(Integer, default=0)
    row_count: Mapped[int] = mapped_column(Integer, default=0)


class ClarityConnection(Base):
    """The last known state of the connection to Clarity for a project (what the admin page shows)."""

    __tablename__ = "clarity_connection"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # ok | unauthorized | forbidden | quota_exhausted | budget_exhausted | bad_request | error
    status: Mapped[str] = mapped_column(String(24), default="unknown")
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_pull_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(nullable=True)
    recordings_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    recordings_last_pull_at: Mapped[datetime | None] = mapped_column(nullable=True)
    recordings_last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    recordings_matched: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["ClarityCallBudget", "ClarityConnection", "ClaritySnapshot"]
