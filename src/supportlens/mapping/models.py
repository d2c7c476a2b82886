"""Links between sessions and customers, with the evidence behind each."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from supportlens.db.base import Base, utcnow


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
