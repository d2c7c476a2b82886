"""Agents' notes at a moment of a session: add, edit, soft delete."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.auth.models import Agent
from supportlens.db.base import utcnow
from supportlens.problems import ProblemError
from supportlens.sessions.models import SessionAnnotation, UserSession

Category = Literal["issue", "opportunity", "observation"]
Severity = Literal["low", "medium", "high"]
NOTE_MAX = 2000
# A note may sit a little after the last recorded event (the customer was still on the page).
SLACK = timedelta(minutes=5)


def _clean_note(value: str) -> str:
    # NFC, like customers' e-mails: erasure finds (and redacts) an address typed in a note in any form.
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        raise ValueError("must not be empty")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError("must not contain control characters")
    return value


class AnnotationIn(BaseModel):
    """`timestamp` (ISO 8601) or `offsetMs` (milliseconds from the session start) places the note."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    timestamp: datetime | None = None
    offset_ms: int | None = Field(default=None, alias="offsetMs", ge=0, le=7 * 24 * 3600 * 1000)
    note: str = Field(min_length=1, max_length=NOTE_MAX)
    category: Category
    severity: Severity

    @field_validator("note")
    @classmethod
    def _note(cls, v: str) -> str:
        return _clean_note(v)

    @model_validator(mode="after")
    def _placed(self) -> AnnotationIn:
        if self.timestamp is None and self.offset_ms is None:
            raise ValueError("timestamp or offsetMs is required")
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError("timestamp needs a time zone (e.g. Z)")
        return self


class AnnotationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    timestamp: datetime | None = None
    offset_ms: int | None = Field(default=None, alias="offsetMs", ge=0, le=7 * 24 * 3600 * 1000)
    note: str | None = Field(default=None, min_length=1, max_length=NOTE_MAX)
    category: Category | None = None
    severity: Severity | None = None

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        return None if v is None else _clean_note(v)


def resolve_time(session: UserSession, timestamp: datetime | None, offset_ms: int | None) -> datetime:
    when = (
        timestamp if timestamp is not None else session.session_start + timedelta(milliseconds=offset_ms or 0)
    )
    if when < session.session_start or when > session.session_end + SLACK:
        field = "timestamp" if timestamp is not None else "offsetMs"
        raise ProblemError(400, "Outside the session", "the moment must fall within the session", field=field)
    return when


def annotation_json(a: SessionAnnotation, session: UserSession, author: str | None) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "sessionId": str(a.session_id),
        "userId": str(a.agent_id) if a.agent_id else None,
        "author": author,
        "timestamp": a.timestamp.isoformat(),
        "offsetMs": max(0, int((a.timestamp - session.session_start).total_seconds() * 1000)),
        "note": a.note,
        "category": a.category,
        "severity": a.severity,
        "createdAt": a.created_at.isoformat(),
        "updatedAt": a.updated_at.isoformat(),
    }


async def list_for_session(db: AsyncSession, session: UserSession) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            select(SessionAnnotation, Agent.name, Agent.email)
            .outerjoin(Agent, Agent.id == SessionAnnotation.agent_id)
            .where(SessionAnnotation.session_id == session.id, SessionAnnotation.deleted_at.is_(None))
            .order_by(SessionAnnotation.timestamp, SessionAnnotation.created_at)
        )
    ).all()
    return [annotation_json(a, session, name or email) for a, name, email in rows]


async def create(
    db: AsyncSession, session: UserSession, agent: Agent, body: AnnotationIn
) -> SessionAnnotation:
    a = SessionAnnotation(
        session_id=session.id,
        agent_id=agent.id,
        timestamp=resolve_time(session, body.timestamp, body.offset_ms),
        note=body.note,
        category=body.category,
        severity=body.severity,
    )
    db.add(a)
    await db.flush()
    return a


async def get_live(db: AsyncSession, session: UserSession, annotation_id: uuid.UUID) -> SessionAnnotation:
    a = await db.get(SessionAnnotation, annotation_id)
    if a is None or a.session_id != session.id or a.deleted_at is not None:
        raise ProblemError(404, "Note not found", f"no note {annotation_id} on this session")
    return a


def can_change(agent: Agent, a: SessionAnnotation) -> bool:
    """The author changes their note; an admin may change anyone's."""
    return agent.role == "admin" or a.agent_id == agent.id


async def update(
    db: AsyncSession, session: UserSession, a: SessionAnnotation, body: AnnotationPatch
) -> list[str]:
    changed = []
    if body.timestamp is not None or body.offset_ms is not None:
        a.timestamp = resolve_time(session, body.timestamp, body.offset_ms)
        changed.append("timestamp")
    for name in ("note", "category", "severity"):
        value = getattr(body, name)
        if value is not None and value != getattr(a, name):
            setattr(a, name, value)
            changed.append(name)
    a.updated_at = utcnow()
    await db.flush()
    return changed


async def soft_delete(db: AsyncSession, a: SessionAnnotation) -> None:
    a.deleted_at = utcnow()
    await db.flush()
