"""Ingest v1's wire shape: the public batch (hostile input, strictly bounded) and its answer."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

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


class _Strict(BaseModel):
    # The checks pydantic's core cannot express (storable text, bounded event data, UTC times) run once
    # per batch in IngestBatch._checked: a Python validator per field cost as much as the JSON parsing.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


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


def _data_problem(value: dict[str, Scalar], texts: list[str]) -> str | None:
    """What is wrong with an event's data (bounded keys and values, finite numbers), or None; its keys
    and text values are added to `texts` on the way (for the one look at all the batch's text)."""
    if len(value) > DATA_MAX_KEYS:
        return f"at most {DATA_MAX_KEYS} keys"
    for key, item in value.items():
        if not key or len(key) > DATA_KEY_MAX:
            return f"keys must be 1 to {DATA_KEY_MAX} characters"
        texts.append(key)
        if isinstance(item, str):
            if len(item) > DATA_VALUE_MAX:
                return f"'{key[:DATA_KEY_MAX]}' is longer than {DATA_VALUE_MAX} characters"
            texts.append(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"'{key[:DATA_KEY_MAX]}' is not a finite number"
    return None


def _invalid(loc: tuple[str | int, ...], value: Any, message: str) -> ValidationError:
    """The error a field validator raising ValueError(message) at `loc` would have given."""
    return ValidationError.from_exception_data(
        "IngestBatch", [{"type": "value_error", "loc": loc, "input": value, "ctx": {"error": message}}]
    )


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

    @model_validator(mode="after")
    def _checked(self) -> IngestBatch:
        """Event times in UTC (a time without an offset is UTC), bounded event data, and no text that
        PostgreSQL cannot store, each failure naming its field; one pass over the batch."""
        texts: list[str] = []
        for i, e in enumerate(self.events):
            ts = e.ts
            # Straight into the field's slot: the model's __setattr__ costs more than the conversion.
            e.__dict__["ts"] = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            problem = _data_problem(e.data, texts) if e.data else None
            if problem:
                raise _invalid(("events", i, "data"), e.data, problem)
            if e.url:
                texts.append(e.url)
            if e.selector:
                texts.append(e.selector)
        texts.extend(t for _, t in self._top_texts() if t)
        # One look at all the text: ASCII holds no surrogate, so it needs only a NUL search (memchr);
        # only other text pays for the regular expression, and only a hit for finding its field.
        joined = "\x01".join(texts)
        if ("\x00" in joined) if joined.isascii() else bool(_UNSTORABLE.search(joined)):
            for loc, value in self._all_texts():
                if _UNSTORABLE.search(value):
                    raise _invalid(loc, value, "contains a NUL character or an unpaired surrogate")
        return self

    def _top_texts(self) -> list[tuple[tuple[str | int, ...], str | None]]:
        c, who, page = self.clarity, self.customer, self.page
        out: list[tuple[tuple[str | int, ...], str | None]] = [
            (("siteKey",), self.site_key),
            (("clarity", "projectId"), c.project_id),
            (("clarity", "userId"), c.user_id),
            (("clarity", "sessionId"), c.session_id),
        ]
        if who is not None:
            out += [(("customer", "email"), who.email), (("customer", "id"), who.id)]
            out.append((("customer", "name"), who.name))
        if page is not None:
            out += [(("page", "url"), page.url), (("page", "title"), page.title)]
            out.append((("page", "referrer"), page.referrer))
        return out

    def _all_texts(self) -> list[tuple[tuple[str | int, ...], str]]:
        out = [(loc, t) for loc, t in self._top_texts() if t]
        for i, e in enumerate(self.events):
            for field, value in (("url", e.url), ("selector", e.selector)):
                if value:
                    out.append((("events", i, field), value))
            for key, item in e.data.items():
                out.append((("events", i, "data", key), key))
                if isinstance(item, str):
                    out.append((("events", i, "data", key), item))
        return out


class IngestResult(BaseModel):
    accepted: int
    duplicates: int


# ---- Agent API ---------------------------------------------------------------------------------
