"""Imports every model so that Base.metadata knows all tables (Alembic, tests, erasure scans)."""

from supportlens.audit.models import AuditEntry
from supportlens.auth.models import Agent, AgentSession, ApiToken
from supportlens.db.base import Base
from supportlens.mapping.models import SessionCustomerMapping
from supportlens.search.models import SearchHistory
from supportlens.sessions.models import IngestSite, SessionAnnotation, SessionEvent, UserSession

__all__ = [
    "Agent",
    "AgentSession",
    "ApiToken",
    "AuditEntry",
    "Base",
    "IngestSite",
    "SearchHistory",
    "SessionAnnotation",
    "SessionCustomerMapping",
    "SessionEvent",
    "UserSession",
]
