"""Add a session's story to HubSpot as a note, once per (session, ticket, moment).

Order with the vendor: a pending row (no note id yet, a fresh nonce) is committed first; then, holding
that row's lock, HubSpot is called and the note id stored. If HubSpot refuses (a missing scope, a
deleted ticket) the pending row is deleted: nothing is kept. If HubSpot's answer never arrived (a
timeout: it may have made the note) or our commit failed after it answered, the pending row stays, and
the next attempt looks for the nonce in the contact's notes before it makes one, so a retry never
makes a second note. Two agents adding the same at once: the second is told to try again (409).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit.service import customer_ref
from supportlens.config import Settings
from supportlens.crmnotes.models import HubSpotNoteLink
from supportlens.crmnotes.story import session_story
from supportlens.db.base import utcnow
from supportlens.integrations.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
)
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens.integrations.hubspot.models import HubSpotTicket
from supportlens.integrations.hubspot.notes import NoteContent
from supportlens.problems import ProblemError
from supportlens.sessions import reads as inv
from supportlens.sessions.models import UserSession

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: FOR UPDATE NOWAIT found the row locked


@dataclass(frozen=True)
class NoteRequest:
    ticket_id: str | None = None
    at_ms: int | None = None
    comment: str | None = None

    @property
    def comment_text(self) -> str:
        return " ".join((self.comment or "").split())

    @property
    def comment_sha256(self) -> str:
        return hashlib.sha256(self.comment_text.encode()).hexdigest()


@dataclass
class NoteOutcome:
    link: HubSpotNoteLink
    created: bool  # a new note in HubSpot (201) rather than the one already made (200)
    updated: bool  # the comment changed: the note was updated
    url: str  # the HubSpot record whose timeline shows the note


@dataclass
class Target:
    """Whom the note is about: the session's customer and their HubSpot contact."""

    email: str
    contact_id: str


async def target_of(
    db: AsyncSession, hubspot: HubSpotClient, session: UserSession, settings: Settings
) -> Target:
    customer = await inv.customer_of(db, session, settings.mapping_min_confidence)
    if customer is None:
        raise ProblemError(409, "Session not linked", "this session is not linked to a customer yet")
    contact = await hubspot.get_contact_by_email(customer["email"])
    if contact is None:
        raise ProblemError(
            409, "No HubSpot contact", "HubSpot has no contact with the e-mail of this session's customer"
        )
    return Target(email=customer["email"], contact_id=contact.id)


def as_problem(exc: UpstreamError, *, ticket_id: str | None, writing: bool = True) -> ProblemError:
    """A vendor failure in words an agent can act on (a write: nothing was saved in SupportLens)."""
    tail = " Nothing was saved." if writing else ""
    if isinstance(exc, UpstreamNotFound):
        field = "ticketId" if ticket_id else None
        return ProblemError(404, "Not found in HubSpot", exc.message + "." + tail, field=field)
    if isinstance(exc, UpstreamForbidden):
        return ProblemError(502, "HubSpot refused the note", exc.message + "." + tail)
    from supportlens.integrations.errors import in_plain_words

    return ProblemError(502, "HubSpot is unavailable", f"HubSpot {in_plain_words(exc)}." + tail)


def _definitely_refused(exc: UpstreamError) -> bool:
    """A 4xx means HubSpot made nothing; a timeout or 5xx leaves it unknown."""
    return isinstance(exc, UpstreamBadResponse) and exc.status is not None and 400 <= exc.status < 500


async def find_link(db: AsyncSession, session_id: uuid.UUID, req: NoteRequest) -> HubSpotNoteLink | None:
    n = HubSpotNoteLink
    return await db.scalar(
        select(n).where(
            n.session_id == session_id,
            n.ticket_id.is_(None) if req.ticket_id is None else n.ticket_id == req.ticket_id,
            n.at_ms.is_(None) if req.at_ms is None else n.at_ms == req.at_ms,
        )
    )


async def _lock_link(db: AsyncSession, session_id: uuid.UUID, req: NoteRequest) -> HubSpotNoteLink:
    n = HubSpotNoteLink
    stmt = (
        select(n)
        .where(
            n.session_id == session_id,
            n.ticket_id.is_(None) if req.ticket_id is None else n.ticket_id == req.ticket_id,
            n.at_ms.is_(None) if req.at_ms is None else n.at_ms == req.at_ms,
        )
        .with_for_update(nowait=True)
        .execution_options(populate_existing=True)
    )
    try:
        link = await db.scalar(stmt)
    except DBAPIError as exc:
        await db.rollback()
        if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise ProblemError(
                409, "Already being added", "this note is being added right now; try again in a moment"
            ) from None
        raise
    if link is None:  # erased or removed between our insert and this read
        raise ProblemError(409, "Try again", "the session changed while the note was being added")
    return link


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def supportlens_url(settings: Settings, session: UserSession, at_ms: int | None, nonce: str) -> str:
    base = settings.base_url.rstrip("/")
    moment = f"?t={at_ms}" if at_ms is not None else ""
    return f"{base}/sessions/{session.id}{moment}#hubspot-note-{nonce}"


async def _content(
    db: AsyncSession, session: UserSession, settings: Settings, req: NoteRequest, nonce: str
) -> Any:
    marks = await inv.markers(db, session)
    return session_story(
        start=session.session_start,
        end=session.session_end,
        marks=marks,
        at_ms=req.at_ms,
        comment=req.comment_text or None,
        recording_url=session.recording_url,
        supportlens_url=supportlens_url(settings, session, req.at_ms, nonce),
    )


async def duration_ms(db: AsyncSession, session: UserSession) -> int:
    marks = await inv.markers(db, session)
    return max(
        inv.offset_ms(session.session_end, session.session_start), max((m["t"] for m in marks), default=0)
    )


async def contact_tickets(hubspot: HubSpotClient, target: Target) -> list[HubSpotTicket]:
    return await hubspot.list_contact_tickets(target.contact_id)


async def add_note(
    db: AsyncSession,
    hubspot: HubSpotClient,
    settings: Settings,
    session: UserSession,
    agent: Any,
    req: NoteRequest,
) -> NoteOutcome:
    """The note for (session, ticket, moment): made, found again, or updated with an edited comment."""
    if req.at_ms is not None and req.at_ms > await duration_ms(db, session):
        raise ProblemError(400, "Invalid request", "atMs: after the end of the session", field="atMs")
    try:
        account = await hubspot.account()
        existing = await find_link(db, session.id, req)
        if existing is not None and existing.note_id and existing.comment_sha256 == req.comment_sha256:
            return NoteOutcome(existing, False, False, _record_url(account, existing))
        target = await target_of(db, hubspot, session, settings)
        if req.ticket_id is not None:
            tickets = await contact_tickets(hubspot, target)
            if req.ticket_id not in {t.id for t in tickets}:
                raise ProblemError(
                    404,
                    "Ticket not found",
                    "ticketId: not one of this customer's HubSpot tickets (it may have been deleted)",
                    field="ticketId",
                )
    except UpstreamError as exc:
        await db.rollback()
        raise as_problem(exc, ticket_id=None) from exc

    await _store_pending(db, session, agent, req, target, settings)
    link = await _lock_link(db, session.id, req)
    content = await _content(db, session, settings, req, link.nonce)
    try:
        created, updated = await _write_note(hubspot, link, content, session, req)
    except UpstreamError as exc:
        if link.note_id is None and _definitely_refused(exc):
            await db.execute(delete(HubSpotNoteLink).where(HubSpotNoteLink.id == link.id))
            await db.commit()
        else:
            await db.rollback()  # the pending row stays: the next attempt looks for the note first
        raise as_problem(exc, ticket_id=req.ticket_id) from exc
    link.comment_sha256 = req.comment_sha256
    link.agent_id = agent.id
    link.updated_at = utcnow()
    await db.flush()
    return NoteOutcome(link, created, updated, _record_url(account, link))


async def _store_pending(
    db: AsyncSession, session: UserSession, agent: Any, req: NoteRequest, target: Target, settings: Settings
) -> None:
    """The pending row with its nonce, committed before HubSpot is called (see the module's docstring)."""
    await db.execute(
        insert(HubSpotNoteLink)
        .values(
            id=uuid.uuid4(),
            session_id=session.id,
            ticket_id=req.ticket_id,
            at_ms=req.at_ms,
            contact_id=target.contact_id,
            customer_ref=customer_ref(target.email, settings),
            note_id=None,
            nonce=uuid.uuid4().hex,
            comment_sha256=req.comment_sha256,
            agent_id=agent.id,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(constraint="uq_hubspot_note_links_key")
    )
    await db.commit()


async def _write_note(
    hubspot: HubSpotClient,
    link: HubSpotNoteLink,
    content: NoteContent,
    session: UserSession,
    req: NoteRequest,
) -> tuple[bool, bool]:
    """Make the note in HubSpot, find the one a lost answer made, or update an edited comment:
    (created, updated)."""
    created = updated = False
    if link.note_id is None:
        found = await hubspot.find_contact_note(link.contact_id, link.nonce)
        if found is not None:  # made by an attempt whose answer we never stored
            link.note_id = found.id
            created = True  # first recorded now: for the agent, this is when it was made
            updated = link.comment_sha256 != req.comment_sha256
            if updated:
                await hubspot.update_note(found.id, content)
        else:
            note = await hubspot.create_note(
                link.contact_id, content, at=_note_time(session, req.at_ms), ticket_id=req.ticket_id
            )
            link.note_id = note.id
            created = True
    elif link.comment_sha256 != req.comment_sha256:
        try:
            await hubspot.update_note(link.note_id, content)
            updated = True
        except UpstreamNotFound:  # someone deleted the note in HubSpot since: make it again
            note = await hubspot.create_note(
                link.contact_id, content, at=_note_time(session, req.at_ms), ticket_id=req.ticket_id
            )
            link.note_id = note.id
            created = True
    return created, updated


def _note_time(session: UserSession, at_ms: int | None) -> datetime:
    """The note's place on HubSpot's timeline: the moment, else the session's start."""
    return session.session_start + timedelta(milliseconds=at_ms or 0)


def _record_url(account: Any, link: HubSpotNoteLink) -> str:
    if link.ticket_id:
        return str(account.record_url("tickets", link.ticket_id))
    return str(account.record_url("contacts", link.contact_id))


async def links_of_session(db: AsyncSession, session_id: uuid.UUID) -> list[HubSpotNoteLink]:
    n = HubSpotNoteLink
    rows = await db.scalars(
        select(n).where(n.session_id == session_id, n.note_id.is_not(None)).order_by(n.created_at)
    )
    return list(rows.all())


async def sessions_by_ticket(db: AsyncSession, ticket_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Ticket id → the sessions attached to it (newest first), for the search page's HubSpot panel."""
    if not ticket_ids:
        return {}
    n = HubSpotNoteLink
    rows = (
        await db.execute(
            select(n.ticket_id, n.session_id, n.at_ms, UserSession.session_start)
            .join(UserSession, UserSession.id == n.session_id)
            .where(n.ticket_id.in_(ticket_ids[:200]), n.note_id.is_not(None))
            .order_by(UserSession.session_start.desc(), n.at_ms)
        )
    ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for ticket_id, session_id, at_ms, start in rows:
        out.setdefault(str(ticket_id), []).append(
            {"sessionId": str(session_id), "atMs": at_ms, "start": start}
        )
    return out


async def erase(db: AsyncSession, email: str, session_ids: list[uuid.UUID], settings: Settings) -> int:
    """The note links of an erased customer: of their sessions, and any naming them (by keyed hash).
    The notes themselves are HubSpot's records; erasing there is HubSpot's own process."""
    n = HubSpotNoteLink
    removed = 0
    for start in range(0, len(session_ids), 500):
        result = await db.execute(delete(n).where(n.session_id.in_(session_ids[start : start + 500])))
        removed += int(getattr(result, "rowcount", 0) or 0)
    result = await db.execute(delete(n).where(n.customer_ref == customer_ref(email, settings)))
    return removed + int(getattr(result, "rowcount", 0) or 0)
