"""Wire shapes: the public Ingest v1 batch (hostile input, strictly bounded) and the agent API."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

from supportlens.customers.emails import CustomerEmail

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 500

EVENT_TYPES = ("navigation", "click", "scroll", "error", "form_submit", "rage_click", "dead_click", "custom")
EventType = Literal[
    "navigation", "click", "scroll", "error", "form_submit", "rage_click", "dead_click", "custom"
]

ClarityId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Url = Annotated[str, StringConstraints(max_length=2048)]
ShortText = Annotated[str, StringConstraints(max_length=300)]
DATA_MAX_KEYS = 20
DATA_KEY_MAX = 40
DATA_VALUE_MAX = 2000


# NUL and lone UTF-16 surrogates cannot be stored in PostgreSQL text; refuse them with the field named.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_unstorable(value: Any) -> Any:
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise ValueError("contains a NUL character or an unpaired surrogate")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key)
            _refuse_unstorable(item)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _refuse_unstorable(value)


class ClarityIds(_Strict):
    # Empty when the tracker could not tell (cookie fallback): the site's configured project is used.
    project_id: Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")] = Field(
        default="", alias="projectId"
    )
    user_id: ClarityId = Field(alias="userId")
    session_id: ClarityId = Field(alias="sessionId")
    page_num: int | None = Field(default=None, alias="pageNum", ge=0, le=100_000)


class CustomerIn(_Strict):
    email: CustomerEmail | None = None  # stored in the canonical form (customers/emails.py)
    id: Annotated[str, StringConstraints(max_length=128)] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class ConsentIn(_Strict):
    analytics: bool


class Viewport(_Strict):
    w: int = Field(ge=0, le=100_000)
    h: int = Field(ge=0, le=100_000)


class PageIn(_Strict):
    url: Url | None = None
    title: ShortText | None = None
    referrer: Url | None = None
    viewport: Viewport | None = None


Scalar = str | int | float | bool | None


class EventIn(_Strict):
    id: uuid.UUID
    type: EventType
    ts: datetime
    url: Url | None = None
    selector: Annotated[str, StringConstraints(max_length=512)] | None = None
    x: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    y: int | None = Field(default=None, ge=-1_000_000, le=10_000_000)
    data: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("data")
    @classmethod
    def _bounded_data(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        if len(value) > DATA_MAX_KEYS:
            raise ValueError(f"at most {DATA_MAX_KEYS} keys")
        for key, item in value.items():
            if not key or len(key) > DATA_KEY_MAX:
                raise ValueError(f"keys must be 1 to {DATA_KEY_MAX} characters")
            if isinstance(item, str) and len(item) > DATA_VALUE_MAX:
                raise ValueError(f"'{key[:DATA_KEY_MAX]}' is longer than {DATA_VALUE_MAX} characters")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"'{key[:DATA_KEY_MAX]}' is not a finite number")
        return value


class AutomationIn(_Strict):
    """What the page itself saw: `navigator.webdriver`, and whether a person has interacted yet."""

    webdriver: bool = False
    interacted: bool = False


class IngestBatch(_Strict):
    site_key: Annotated[str, StringConstraints(min_length=8, max_length=100)] = Field(alias="siteKey")
    clarity: ClarityIds
    customer: CustomerIn | None = None
    consent: ConsentIn | None = None
    page: PageIn | None = None
    automation: AutomationIn | None = None
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_EVENTS)


class IngestResult(BaseModel):
    accepted: int
    duplicates: int


# ---- Agent API ---------------------------------------------------------------------------------


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Evidence(_Camel):
    method: str
    score: float
    reason: str


class MappingInfo(_Camel):
    customer_email: str | None = None
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
    recording_url: str | None = None
    has_recording: bool
    recording_expires_at: datetime
    mapping: MappingInfo = Field(default_factory=MappingInfo)
    signals: Signals = Field(default_factory=Signals)


class SessionPage(_Camel):
    items: list[SessionSummary]
    next_cursor: str | None = None


class SessionDetail(SessionSummary):
    customer_email: str | None = None
    customer_name: str | None = None
    event_count: int = 0
    client_ip: str | None = None
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
