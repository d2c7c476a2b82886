"""Dwolla's webhooks in (`POST /api/webhooks/dwolla`), the "Needs attention" queue (API, home-page
partial, take and close) and the admin page of the Dwolla webhook subscription."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from supportlens.attention import service
from supportlens.attention.models import AttentionCase, DwollaWebhookEvent
from supportlens.audit import service as audit
from supportlens.auth.deps import (
    AdminPrincipal,
    AgentPrincipal,
    CurrentPrincipal,
    DbDep,
    Principal,
    SettingsDep,
)
from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.deps import DwollaDep
from supportlens.integrations.dwolla.webhooks import SIGNATURE_HEADER, WebhookRejected, verify_webhook
from supportlens.integrations.errors import UpstreamError, in_plain_words
from supportlens.problems import ProblemError
from supportlens.web import viewer
from supportlens.web.pages import render

router = APIRouter()

WEBHOOK_PATH = "/api/webhooks/dwolla"
_REJECTED_TITLES = {401: "Signature check failed", 413: "Payload too large", 400: "Invalid webhook"}


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it passes `limit` bytes: never read whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, "Payload too large", f"the body is over {limit} bytes", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, "Payload too large", f"the body is over {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_secrets(settings: Settings) -> list[str]:
    return [
        s.get_secret_value()
        for s in (settings.dwolla_webhook_secret, settings.dwolla_webhook_previous_secret)
        if s.get_secret_value()
    ]


@router.post(WEBHOOK_PATH, tags=["webhooks"], summary="Dwolla webhook events (signed by Dwolla)")
async def dwolla_webhook(request: Request, db: DbDep, settings: SettingsDep) -> JSONResponse:
    """Verify, store once, enqueue the work, answer 200. A replayed event id is acknowledged (200)
    without being stored or handled again; anything refused stores nothing."""
    limit = settings.dwolla_webhook_max_bytes
    body = await _bounded_body(request, limit)
    try:
        event = verify_webhook(
            body,
            request.headers.get(SIGNATURE_HEADER),
            webhook_secrets(settings),
            now=utcnow(),
            max_bytes=limit,
        )
    except WebhookRejected as exc:
        title = _REJECTED_TITLES.get(exc.status, "Invalid webhook")
        raise ProblemError(
            exc.status, title, exc.message, field=exc.field, extra={"reason": exc.reason}
        ) from None
    stored = await service.store_event(db, event)
    return JSONResponse({"received": True, "duplicate": not stored})


# ------------------------------------------------------------------------------------------- the queue


async def _audit_view(
    db: DbDep,
    settings: Settings,
    request: Request,
    principal: Principal,
    rows: list[service.CaseRow],
    via: str,
) -> None:
    await audit.record(
        db,
        "attention.view",
        request=request,
        actor=principal.agent,
        target_type="attention",
        target=f"{len(rows)} cases",
        detail={
            "via": via,
            "customers": sorted(
                {audit.customer_ref(r.case.customer_email, settings) for r in rows if r.case.customer_email}
            ),
        },
    )


@router.get("/api/attention", tags=["attention"], summary="The Needs attention queue")
async def api_attention(
    request: Request,
    principal: CurrentPrincipal,
    db: DbDep,
    settings: SettingsDep,
    status: Annotated[str, Query(max_length=16)] = "open",
) -> dict[str, Any]:
    """Failed transfers to look at: those with a session error within 30 minutes first, then newest."""
    rows = await service.list_cases(db, service.parse_status(status))
    await _audit_view(db, settings, request, principal, rows, "api")
    items = [service.case_json(r) for r in rows]
    return {"items": viewer.mask_json(items, service.CASE_FIELDS, viewer.is_viewer(principal))}


def _case_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ProblemError(400, "Invalid parameter", "case_id must be a UUID", field="case_id") from None


async def _change(
    request: Request, principal: Principal, db: DbDep, settings: Settings, case_id: str, action: str
) -> AttentionCase:
    cid = _case_id(case_id)
    found = await (service.take if action == "take" else service.close)(db, cid, principal.agent)
    await audit.record(
        db,
        f"attention.{action}",
        request=request,
        actor=principal.agent,
        target_type="attention_case",
        target=str(found.id),
        detail={
            "customer": audit.customer_ref(found.customer_email, settings) if found.customer_email else None
        },
        commit=False,
    )
    await db.commit()
    return found


@router.post("/api/attention/{case_id}/take", tags=["attention"], summary="Take a case (assign it to me)")
async def api_take(
    request: Request, principal: AgentPrincipal, db: DbDep, settings: SettingsDep, case_id: str
) -> dict[str, Any]:
    found = await _change(request, principal, db, settings, case_id, "take")
    return {"id": str(found.id), "status": found.status, "assignee": principal.agent.email}


@router.post("/api/attention/{case_id}/close", tags=["attention"], summary="Close a case")
async def api_close(
    request: Request, principal: AgentPrincipal, db: DbDep, settings: SettingsDep, case_id: str
) -> dict[str, Any]:
    found = await _change(request, principal, db, settings, case_id, "close")
    return {"id": str(found.id), "status": found.status}


async def _queue_partial(
    request: Request, principal: Principal, db: DbDep, settings: Settings, *, notice: str = ""
) -> HTMLResponse:
    rows = await service.list_cases(db, "active")
    version = await service.queue_version(db)
    await _audit_view(db, settings, request, principal, rows, "page")
    now = utcnow()
    cases = [
        {
            "row": r,
            "amount": service.amount_words(r.case),
            "reason": service.reason_words(r.case),
            "moment": service.moment_words(r.case),
            "ago": service.ago_words(r.case.failed_at, now),
        }
        for r in rows
    ]
    return render(
        request,
        "attention/_queue.html",
        {
            "cases": cases,
            "version": version,
            "notice": notice,
            "unhandled": await service.unhandled_count(db),
        },
        status_code=200,
    )


@router.get("/partials/attention", include_in_schema=False)
async def attention_partial(
    request: Request,
    principal: CurrentPrincipal,
    db: DbDep,
    settings: SettingsDep,
    since: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The queue for the home page. Polled: unchanged since `since` answers 204 (nothing swapped, nothing
    read about a customer, nothing audited)."""
    if since and since == await service.queue_version(db):
        return Response(status_code=204)
    return await _queue_partial(request, principal, db, settings)


@router.post("/partials/attention/{case_id}/{action}", include_in_schema=False)
async def attention_action(
    request: Request, principal: AgentPrincipal, db: DbDep, settings: SettingsDep, case_id: str, action: str
) -> Response:
    if action not in ("take", "close"):
        raise ProblemError(404, "Not found", "no such action", field="action")
    try:
        await _change(request, principal, db, settings, case_id, action)
    except ProblemError as exc:
        if exc.status != 409:
            raise
        await db.rollback()
        return await _queue_partial(request, principal, db, settings, notice=exc.detail or "")
    return await _queue_partial(request, principal, db, settings)


# ------------------------------------------------------------------------------- admin: subscription


def webhook_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + WEBHOOK_PATH


@router.get("/admin/webhooks", response_class=HTMLResponse, include_in_schema=False)
async def webhooks_admin(
    request: Request,
    principal: AdminPrincipal,
    db: DbDep,
    settings: SettingsDep,
    dwolla: DwollaDep,
    notice: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    subscriptions, error = [], None
    try:
        subscriptions = await dwolla.list_webhook_subscriptions()
    except UpstreamError as exc:
        error = f"Dwolla {in_plain_words(exc)}: the subscriptions cannot be listed now."
    from sqlalchemy import func, select

    e = DwollaWebhookEvent
    received = (await db.execute(select(func.count(), func.max(e.received_at)).select_from(e))).one()
    pending = await db.scalar(select(func.count()).select_from(e).where(e.processed_at.is_(None)))
    messages = {"created": "Subscription created: Dwolla now sends its events here."}
    return render(
        request,
        "attention/admin_webhooks.html",
        {
            "subscriptions": subscriptions,
            "error": error,
            "target": webhook_url(settings),
            "has_secret": bool(webhook_secrets(settings)),
            "received": received[0],
            "last_received": received[1],
            "pending": pending or 0,
            "notice": messages.get(notice, ""),
        },
    )


@router.post("/admin/webhooks", include_in_schema=False)
async def create_subscription(
    request: Request, principal: AdminPrincipal, db: DbDep, settings: SettingsDep, dwolla: DwollaDep
) -> Response:
    """Subscribe this app's endpoint with the configured secret (Dwolla never returns the secret)."""
    secret = settings.dwolla_webhook_secret.get_secret_value()
    if not secret:
        raise ProblemError(409, "No webhook secret", "set SUPPORTLENS_DWOLLA_WEBHOOK_SECRET first")
    url = webhook_url(settings)
    try:
        created = await dwolla.create_webhook_subscription(url, secret)
    except UpstreamError as exc:
        await audit.record(db, "dwolla.webhook_subscription.create", request=request, actor=principal.agent,
                           target_type="dwolla_subscription", target=url, outcome="error")  # fmt: skip
        raise ProblemError(502, "Dwolla did not subscribe", f"Dwolla {in_plain_words(exc)}") from None
    await audit.record(db, "dwolla.webhook_subscription.create", request=request, actor=principal.agent,
                       target_type="dwolla_subscription", target=created.id, detail={"url": url})  # fmt: skip
    return RedirectResponse("/admin/webhooks?notice=created", status_code=303)
