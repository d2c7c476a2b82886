"""The session note API: the contact's tickets for the dialog, and Add to HubSpot (agents and admins)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from supportlens.audit import service as audit
from supportlens.auth.deps import AgentPrincipal, DbDep, SettingsDep
from supportlens.crmnotes import service
from supportlens.deps import HubSpotDep
from supportlens.integrations.errors import UpstreamError
from supportlens.integrations.hubspot.notes import COMMENT_MAX
from supportlens.sessions import reads as inv

router = APIRouter(tags=["hubspot notes"])

AT_MS_MAX = 7 * 24 * 3600 * 1000
TICKET_STAGES = {"1": "New", "2": "Waiting on contact", "3": "Waiting on us", "4": "Closed"}


class NoteIn(BaseModel):
    """`ticketId`: one of the contact's tickets (optional); `atMs`: the moment, ms from the session's
    start (optional); `comment`: the agent's words (optional, ≤ 2,000 characters)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ticket_id: str | None = Field(default=None, alias="ticketId", pattern=r"^[0-9]{1,20}$")
    at_ms: int | None = Field(default=None, alias="atMs", ge=0, le=AT_MS_MAX)
    comment: str | None = Field(default=None, max_length=min(COMMENT_MAX, 2000))


def _link_json(link: Any) -> dict[str, Any]:
    return {
        "noteId": link.note_id,
        "contactId": link.contact_id,
        "ticketId": link.ticket_id,
        "atMs": link.at_ms,
        "updatedAt": link.updated_at.isoformat(),
    }


@router.get("/api/clarity/sessions/{session_id}/hubspot-note")
async def note_options(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
    hubspot: HubSpotDep,
) -> dict[str, Any]:
    """What the Add to HubSpot dialog needs: the contact's tickets and the notes already made."""
    session = await inv.get_session(db, session_id)
    made = [_link_json(link) for link in await service.links_of_session(db, session.id)]
    body: dict[str, Any] = {"sessionId": str(session.id), "notes": made, "tickets": [], "contactId": None}
    try:
        target = await service.target_of(db, hubspot, session, settings)
        tickets = await service.contact_tickets(hubspot, target)
    except UpstreamError as exc:
        raise service.as_problem(exc, ticket_id=None, writing=False) from exc
    body["contactId"] = target.contact_id
    body["tickets"] = [
        {
            "id": t.id,
            "subject": t.subject,
            "status": TICKET_STAGES.get(t.stage or "", t.stage),
            "created": t.created,
        }
        for t in tickets
    ]
    await audit.record_session(
        db,
        "hubspot_tickets_viewed",
        session,
        settings=settings,
        request=request,
        actor=principal.agent,
        tickets=len(tickets),
    )
    return body


@router.post("/api/clarity/sessions/{session_id}/hubspot-note", status_code=201)
async def add_note(
    request: Request,
    session_id: uuid.UUID,
    body: NoteIn,
    db: DbDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
    hubspot: HubSpotDep,
) -> JSONResponse:
    """Add the session's story as a note on the contact (and ticket): 201 when made, 200 with the same
    note when this session, ticket and moment already have one (an edited comment updates it)."""
    session = await inv.get_session(db, session_id)
    req = service.NoteRequest(ticket_id=body.ticket_id, at_ms=body.at_ms, comment=body.comment)
    outcome = await service.add_note(db, hubspot, settings, session, principal.agent, req)
    link = outcome.link
    action = "hubspot_note_created" if outcome.created else "hubspot_note_updated"
    if not (outcome.created or outcome.updated):
        action = "hubspot_note_unchanged"  # asked again: the same note, answered from our link
    await audit.record_session(
        db, action, session, settings=settings, request=request, actor=principal.agent, commit=False,
        note=link.note_id, ticket=link.ticket_id, at_ms=link.at_ms,
    )  # fmt: skip
    await db.commit()  # the link (and its audit entry) together
    payload = {
        "noteId": link.note_id,
        "contactId": link.contact_id,
        "ticketId": link.ticket_id,
        "url": outcome.url,
    }
    return JSONResponse(payload, status_code=201 if outcome.created else 200)
