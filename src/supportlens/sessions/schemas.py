"""The agents' sessions API: its wire shapes (camelCase). Fields that can hold PII say which kind
(web/viewer.py decides what a viewer sees of each)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from supportlens.web.viewer import Pii


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Evidence(_Camel):
    method: str
    score: float
    reason: str


class MappingInfo(_Camel):
    customer_email: Annotated[str | None, Pii.email.field] = None
    method: str | None = None
    confidence: float | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class Signals(_Camel):
    clicks: int = 0
    errors: int = 0
    rage_clicks: int = 0
    dead_clicks: int = 0
    max_scroll_depth: int = 0


class SessionSummary(_Camel):
    id: uuid.UUID
    clarity_session_id: str
    clarity_user_id: str
    clarity_project_id: str
    session_start: datetime
    session_end: datetime
    duration_seconds: int
    page_views: int
    device_type: str
    browser: str | None = None
    os: str | None = None
    entry_url: str | None = None
    exit_url: str | None = None
    recording_url: Annotated[str | None, Pii.withheld.field] = None  # viewers do not open recordings
    has_recording: bool
    recording_expires_at: datetime
    mapping: MappingInfo = Field(default_factory=MappingInfo)
    signals: Signals = Field(default_factory=Signals)


class PossibleSessions(_Camel):
    """Sessions below the listing threshold, down to the possible floor, that no agent has decided on."""

    items: list[SessionSummary]
    more: bool = Field(default=False, description="more possible sessions than returned")


class SessionPage(_Camel):
    items: list[SessionSummary]
    next_cursor: str | None = None
    # Only with ?include=possible, and only on the first page (no `before`).
    possible: PossibleSessions | None = None


class SessionDetail(SessionSummary):
    customer_email: Annotated[str | None, Pii.email.field] = None
    customer_name: str | None = None
    event_count: int = 0
    client_ip: Annotated[str | None, Pii.withheld.field] = None
    user_agent: str | None = None


class EventOut(_Camel):
    id: uuid.UUID
    type: str
    timestamp: datetime
    url: str | None = None
    selector: str | None = None
    x: int | None = None
    y: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventPage(_Camel):
    items: list[EventOut]
    next_after: datetime | None = None
    next_after_id: uuid.UUID | None = None


class RecordingInfo(_Camel):
    url: str | None
    available: bool
    expires_at: datetime
