"""/admin/alerts (the webhook spike alerts go to) and the home page's "Spiking now" partial."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth.deps import AdminPrincipal, CurrentPrincipal, DbDep, SettingsDep
from supportlens.issues import alerts
from supportlens.problems import ProblemError
from supportlens.web.pages import render

router = APIRouter(tags=["alerts"])


@router.get("/admin/alerts", response_class=HTMLResponse, include_in_schema=False)
async def alerts_admin(
    request: Request, db: DbDep, principal: AdminPrincipal, saved: str = ""
) -> HTMLResponse:
    hook = await alerts.get_webhook(db)
    deliveries = await alerts.recent_deliveries(db)
    return render(
        request,
        "issues/alerts_admin.html",
        {"hook": hook, "deliveries": deliveries, "saved": saved == "1", "header": alerts.SIGNATURE_HEADER},
    )


@router.post("/admin/alerts", include_in_schema=False)
async def alerts_save(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    url: Annotated[str, Form(max_length=alerts.MAX_URL_LENGTH + 100)],
    secret: Annotated[str, Form(max_length=alerts.MAX_SECRET_LENGTH + 100)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        await alerts.save_webhook(
            db, settings, url=url, secret=secret or None, enabled=enabled == "1", agent_id=principal.agent.id
        )
    except alerts.WebhookConfigError as exc:  # validated before anything is added: nothing to undo
        await audit.record(
            db,
            "alert_webhook_saved",
            request=request,
            actor=principal.agent,
            target_type="alert_webhook",
            outcome="refused",
            detail={"field": exc.field},
        )
        raise ProblemError(400, "Invalid webhook setting", str(exc), field=exc.field) from None
    # The host only: a webhook URL's path often carries a token of its own (Slack's do).
    await audit.record(
        db,
        "alert_webhook_saved",
        request=request,
        actor=principal.agent,
        target_type="alert_webhook",
        target=urlsplit(url.strip()).hostname,
        detail={"enabled": enabled == "1", "secret_changed": bool(secret)},
    )
    return RedirectResponse("/admin/alerts?saved=1", status_code=303)


@router.get("/issues/spiking", response_class=HTMLResponse, include_in_schema=False)
async def spiking_partial(request: Request, db: DbDep, principal: CurrentPrincipal) -> HTMLResponse:
    return render(request, "issues/_spiking.html", {"spiking": await alerts.spiking_now(db)})
