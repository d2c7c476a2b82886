"""Manual links: an agent says a session is (or is not) a customer's. Audited with who and why."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit import service as audit
from supportlens.auth.deps import AdminPrincipal, AgentPrincipal, DbDep, Principal, SettingsDep
from supportlens.config import Settings
from supportlens.customers.emails import CustomerEmail
from supportlens.mapping import calibration, decisions, engine
from supportlens.mapping.facts import FactKeys
from supportlens.mapping.labels import calibration_report
from supportlens.masking import mask_pii_text
from supportlens.problems import ProblemError
from supportlens.sessions.models import SessionCustomerMapping, UserSession
from supportlens.sessions.possible import DISMISS_REASON
from supportlens.sessions.service import summary
from supportlens.web.pages import render

router = APIRouter(tags=["mapping"])

Email = CustomerEmail
# NUL and lone UTF-16 surrogates cannot be stored in PostgreSQL text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable_nfc(value: str) -> str:
    """NFC, like customers' e-mails: erasure finds (and redacts) an address typed in a reason in any form."""
    if _UNSTORABLE.search(value):
        raise ValueError("contains a NUL character or an unpaired surrogate")
    return unicodedata.normalize("NFC", value)


Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable_nfc)]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class MapRequest(_Camel):
    session_id: uuid.UUID
    customer_email: Email
    reason: Reason | None = None


class EvidenceOut(_Camel):
    method: str
    score: float
    reason: str


class MappingOut(_Camel):
    session_id: uuid.UUID
    customer_email: str
    decision: str = Field(description="link or unlink")
    method: str
    confidence: float
    evidence: list[EvidenceOut]


class PossibleRequest(_Camel):
    customer_email: Email
    reason: Reason | None = None


# Audit actions of the decisions on a possible session.
_POSSIBLE_ACTIONS = {"link": "confirm", "unlink": "dismiss"}


async def _decide(
    db: AsyncSession,
    request: Request,
    principal: Principal,
    settings: Settings,
    body: MapRequest,
    decision: str,
    *,
    possible: bool = False,
) -> SessionCustomerMapping:
    session = await db.get(UserSession, body.session_id)
    if session is None:
        raise ProblemError(404, "Session not found", field="sessionId")
    try:
        row = await decisions.set_manual(
            db,
            session=session,
            email=body.customer_email,
            decision=decision,
            agent=principal.agent,
            reason=body.reason,
            keys=FactKeys.of(settings),
            possible=possible,
        )
    except decisions.NotUndecided as exc:
        await db.rollback()
        if exc.decided:
            raise ProblemError(
                409, "Already decided", "an agent already decided on this pair", field="customerEmail"
            ) from exc
        raise ProblemError(
            404, "Not a possible session", "no automatic link to this customer", field="customerEmail"
        ) from exc
    await audit.record(
        db,
        f"mapping.{_POSSIBLE_ACTIONS[decision] if possible else decision}",
        request=request,
        actor=principal.agent,
        target_type="customer",
        target=audit.customer_ref(body.customer_email, settings),
        # The audit log is append-only and outlives erasure: what the agent typed goes there masked
        # (e-mails, phones, cards); the text as typed stays on the link, which erasure deletes.
        detail={"session_id": str(session.id), "reason": mask_pii_text(body.reason or "")},
        commit=False,
    )
    await db.commit()
    return row


def _out(row: SessionCustomerMapping) -> MappingOut:
    return MappingOut(
        session_id=row.session_id,
        customer_email=row.customer_email,
        decision=row.manual_decision or "",
        method=row.mapping_method,
        confidence=row.confidence_score,
        evidence=[EvidenceOut.model_validate(e) for e in row.evidence],
    )


@router.post("/api/clarity/sessions/map", response_model=MappingOut, response_model_by_alias=True)
async def link_session(
    request: Request, db: DbDep, principal: AgentPrincipal, settings: SettingsDep, body: MapRequest
) -> MappingOut:
    """Link a session to a customer by hand: wins over every automatic result."""
    return _out(await _decide(db, request, principal, settings, body, "link"))


@router.delete("/api/clarity/sessions/map", response_model=MappingOut, response_model_by_alias=True)
async def unlink_session(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    body: Annotated[MapRequest | None, Body()] = None,
    session_id: Annotated[uuid.UUID | None, Query(alias="sessionId")] = None,
    customer_email: Annotated[Email | None, Query(alias="customerEmail")] = None,
    reason: Annotated[Reason | None, Query()] = None,
) -> MappingOut:
    """Unlink a session from a customer (body or query): automatic re-scoring never links it again."""
    if body is None:
        if session_id is None:
            raise ProblemError(400, "Missing sessionId", field="sessionId")
        if customer_email is None:
            raise ProblemError(400, "Missing customerEmail", field="customerEmail")
        body = MapRequest(session_id=session_id, customer_email=customer_email, reason=reason)
    return _out(await _decide(db, request, principal, settings, body, "unlink"))


async def _on_possible(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    settings: Settings,
    session_id: uuid.UUID,
    body: PossibleRequest,
    decision: str,
) -> MappingOut:
    reason = body.reason or (DISMISS_REASON if decision == "unlink" else None)
    pair = MapRequest(session_id=session_id, customer_email=body.customer_email, reason=reason)
    return _out(await _decide(db, request, principal, settings, pair, decision, possible=True))


@router.post(
    "/api/clarity/sessions/{session_id}/confirm", response_model=MappingOut, response_model_by_alias=True
)
async def confirm_possible(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: uuid.UUID,
    body: PossibleRequest,
) -> MappingOut:
    """Confirm a possible session of a customer: a manual link (404 when the engine has no link to confirm,
    409 when an agent already decided)."""
    return await _on_possible(request, db, principal, settings, session_id, body, "link")


@router.post(
    "/api/clarity/sessions/{session_id}/dismiss", response_model=MappingOut, response_model_by_alias=True
)
async def dismiss_possible(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: uuid.UUID,
    body: PossibleRequest,
) -> MappingOut:
    """Dismiss a possible session ("not this customer" unless a reason is given): a manual unlink, which
    re-scoring keeps as negative evidence."""
    return await _on_possible(request, db, principal, settings, session_id, body, "unlink")


# ---- htmx partials for the session card ------------------------------------------------------------


async def _card_fragment(
    request: Request, db: AsyncSession, session_id: uuid.UUID, email: str
) -> HTMLResponse:
    rows = (
        await db.scalars(
            select(SessionCustomerMapping).where(SessionCustomerMapping.session_id == session_id)
        )
    ).all()
    mine = next((r for r in rows if r.customer_email == email and r.confidence_score > 0), None)
    mapping: dict[str, Any] = {}
    if mine is not None:
        mapping = {
            "customer_email": mine.customer_email,
            "method": mine.mapping_method,
            "confidence": mine.confidence_score,
            "evidence": mine.evidence,
        }
    return render(
        request, "mapping/_mapping.html", {"s": {"id": session_id, "mapping": mapping}, "customer": email}
    )


def _form_request(session_id: str, customer_email: str, reason: str | None) -> MapRequest:
    try:
        sid = uuid.UUID(session_id)
    except ValueError as exc:
        raise ProblemError(400, "Invalid session id", field="session_id") from exc
    try:
        return MapRequest(session_id=sid, customer_email=customer_email.strip(), reason=reason or None)
    except ValidationError as exc:
        field = "reason" if exc.errors()[0]["loc"][:1] == ("reason",) else "customer_email"
        raise ProblemError(400, f"Invalid {field.replace('_', ' ')}", field=field) from exc


@router.post("/partials/mapping/link", response_class=HTMLResponse, include_in_schema=False)
async def link_partial(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: Annotated[str, Form()],
    customer_email: Annotated[str, Form()],
    reason: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    body = _form_request(session_id, customer_email, reason)
    await _decide(db, request, principal, settings, body, "link")
    return await _card_fragment(request, db, body.session_id, engine.normalise_email(body.customer_email))


@router.post("/partials/mapping/unlink", response_class=HTMLResponse, include_in_schema=False)
async def unlink_partial(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: Annotated[str, Form()],
    customer_email: Annotated[str, Form()],
    reason: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    body = _form_request(session_id, customer_email, reason)
    await _decide(db, request, principal, settings, body, "unlink")
    return await _card_fragment(request, db, body.session_id, engine.normalise_email(body.customer_email))


async def _possible_partial(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    settings: Settings,
    body: MapRequest,
    decision: str,
) -> HTMLResponse:
    if decision == "unlink" and body.reason is None:
        body = body.model_copy(update={"reason": DISMISS_REASON})
    row = await _decide(db, request, principal, settings, body, decision, possible=True)
    session = await db.get(UserSession, body.session_id)
    assert session is not None  # _decide found it; a decision never deletes a session
    return render(
        request,
        "sessions/_possible_item.html",
        {
            "s": summary(session, row, retention_days=settings.recording_retention_days),
            "decided": decision,
            "customer": row.customer_email,
        },
    )


@router.post("/partials/mapping/confirm", response_class=HTMLResponse, include_in_schema=False)
async def confirm_partial(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: Annotated[str, Form()],
    customer_email: Annotated[str, Form()],
    reason: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    return await _possible_partial(
        request, db, principal, settings, _form_request(session_id, customer_email, reason), "link"
    )


@router.post("/partials/mapping/dismiss", response_class=HTMLResponse, include_in_schema=False)
async def dismiss_partial(
    request: Request,
    db: DbDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
    session_id: Annotated[str, Form()],
    customer_email: Annotated[str, Form()],
    reason: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    return await _possible_partial(
        request, db, principal, settings, _form_request(session_id, customer_email, reason), "unlink"
    )


@router.get("/admin/mapping", response_class=HTMLResponse, include_in_schema=False)
async def mapping_accuracy_page(
    request: Request, db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> HTMLResponse:
    """The automatic links' precision and calibration, as the agents' decisions judged them."""
    report = await calibration_report(
        db, threshold=settings.mapping_min_confidence, possible_floor=settings.possible_floor
    )
    return render(request, "admin/mapping.html", {"r": report, "min_labels": calibration.MIN_LABELS})


@router.get("/api/admin/mapping/report")
async def mapping_accuracy_json(
    db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> dict[str, object]:
    """The same report as JSON (admins)."""
    report = await calibration_report(
        db, threshold=settings.mapping_min_confidence, possible_floor=settings.possible_floor
    )
    return calibration.as_json(report)
