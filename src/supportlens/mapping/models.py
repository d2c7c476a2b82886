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
    # session (mapping/possible.py) is a "link", dismissing one an "unlink": no state of their own.
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


class MappingIdentity(Base):
    """A session on which the site named a signed-in customer, with the facts the scorer needs.

    The device (Clarity userId) and a keyed hash of the client IP are copied here so that the
    evidence for any other session is found with one small index range scan.
    """

    __tablename__ = "mapping_identities"
    __table_args__ = (
        Index("ix_mapping_identities_clarity_user_id", "clarity_user_id"),
        Index("ix_mapping_identities_ip_key_session_start", "ip_key", "session_start"),
        Index("ix_mapping_identities_customer_email", "customer_email"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    customer_email: Mapped[str] = mapped_column(String(254), primary_key=True)
    clarity_user_id: Mapped[str] = mapped_column(String(64))
    ip_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    session_start: Mapped[datetime]
    session_end: Mapped[datetime]


class MappingIpCustomer(Base):
    """Distinct customers seen signed in behind one client IP (keyed hashes; counting stops at a cap)."""

    __tablename__ = "mapping_ip_customers"

    ip_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(32), primary_key=True)


class MappingIpDevice(Base):
    """Distinct browsers (Clarity userIds) seen behind one client IP (counting stops at a cap)."""

    __tablename__ = "mapping_ip_devices"

    ip_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    clarity_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class MappingBusyBrowser(Base):
    """A browser (Clarity userId) seen in more sessions than a person makes: a kiosk, a monitor, a bot.

    Like a crowded IP it carries no evidence: its sessions get no device or browser evidence, so its
    history is never read or re-scored again. Written once, when the browser passes the cap; retention
    removes it with the browser's last session.
    """

    __tablename__ = "mapping_busy_browsers"

    clarity_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)


class MappingBusyIp(Base):
    """A client IP (keyed hash) seen in more sessions than a household makes: it carries no evidence.

    Written once, when the address passes the cap; retention removes it after the IP period, when the
    sessions that filled it have lost their addresses.
    """

    __tablename__ = "mapping_busy_ips"

    ip_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)
