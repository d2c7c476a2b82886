"""Every table's model, imported so that Base.metadata knows them all (Alembic's autogenerate, the worker
resolving foreign keys, tests). It imports every domain, so it sits above them all, beside the app."""

from supportlens.attention.models import AttentionCase, DwollaWebhookEvent
from supportlens.audit.models import AuditEntry
from supportlens.auth.models import Agent, AgentSession, ApiToken
from supportlens.crmnotes.models import HubSpotNoteLink
from supportlens.db.base import Base
from supportlens.insights.models import ClarityCallBudget, ClarityConnection, ClaritySnapshot
from supportlens.issues.alert_models import AlertDelivery, AlertWebhook, SpikeAlert, SpikeSeries
from supportlens.issues.models import (
    Issue,
    IssueBucket,
    IssueOccurrence,
    IssuePendingEvent,
    IssueSession,
    IssueStatusChange,
)
from supportlens.mapping.models import (
    MappingBusyBrowser,
    MappingBusyIp,
    MappingIdentity,
    MappingIpCustomer,
    MappingIpDevice,
)
from supportlens.search.models import SearchHistory
from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import (
    IngestSite,
    SessionAnnotation,
    SessionCustomerMapping,
    SessionEvent,
    UserSession,
)

__all__ = [
    "Agent",
    "AgentSession",
    "AlertDelivery",
    "AlertWebhook",
    "ApiToken",
    "AttentionCase",
    "AuditEntry",
    "Base",
    "ClarityCallBudget",
    "ClarityConnection",
    "ClaritySnapshot",
    "ConversionGoal",
    "DwollaWebhookEvent",
    "HubSpotNoteLink",
    "IngestSite",
    "Issue",
    "IssueBucket",
    "IssueOccurrence",
    "IssuePendingEvent",
    "IssueSession",
    "IssueStatusChange",
    "MappingBusyBrowser",
    "MappingBusyIp",
    "MappingIdentity",
    "MappingIpCustomer",
    "MappingIpDevice",
    "SearchHistory",
    "SessionAnnotation",
    "SessionCustomerMapping",
    "SessionEvent",
    "SpikeAlert",
    "SpikeSeries",
    "UserSession",
]
