"""One row per scheduled job: who holds its lease, when it runs next, how its last run went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base


class JobLease(Base):
    """A job is run by the process that flips this row to itself (atomic UPDATE), never by two at once."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    next_run_at: Mapped[datetime]
    interval_seconds: Mapped[int] = mapped_column(Integer, default=0)
    last_started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ok | error
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_holder: Mapped[str | None] = mapped_column(String(100), nullable=True)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
