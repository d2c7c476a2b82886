"""/admin/clarity: the Clarity connection page, its "pull now" button and a JSON view of the same."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from supportlens.audit import service as audit
from supportlens.auth.deps import AdminPrincipal, DbDep, SettingsDep
from supportlens.deps import ClarityExportDep, SessionmakerDep
from supportlens.insights import service
from supportlens.insights.overview import connection_overview
from supportlens.problems import ProblemError
from supportlens.tasks.status import task_statuses
from supportlens.web.pages import render

router = APIRouter(tags=["clarity"])

PULL_MESSAGES = {
    "ok": ("ok", "Pulled: a new snapshot is stored."),
    "budget_exhausted": (
        "warn",
        "Not sent: today's Data Export calls are all used. Try again tomorrow (UTC).",
    ),
    "not_configured": ("warn", "Clarity is not configured: set the project id and API token."),
    "unauthorized": ("error", "Clarity refused the API token (401)."),
    "forbidden": ("error", "Clarity answered 403 Forbidden for this project."),
    "quota_exhausted": ("error", "Clarity answered 429: the project's daily quota is used up."),
    "bad_request": ("error", "Clarity rejected the request (400)."),
    "error": ("error", "The pull failed; see the last error below."),
}


@router.get("/admin/clarity", response_class=HTMLResponse, include_in_schema=False)
async def clarity_admin(
    request: Request, db: DbDep, settings: SettingsDep, principal: AdminPrincipal, pulled: str = ""
) -> HTMLResponse:
    overview = await connection_overview(db, settings)
    flash = PULL_MESSAGES.get(pulled)
    all_jobs = await task_statuses(db, settings)
    return render(
        request,
        "admin/clarity.html",
        {
            "o": overview,
            "flash": flash,
            "schedules": service.SCHEDULES,
            "jobs": all_jobs,
            "run_worker": settings.run_worker,
        },
    )


@router.post("/admin/clarity/pull", include_in_schema=False)
async def clarity_pull_now(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    clarity_export: ClarityExportDep,
    principal: AdminPrincipal,
    schedule: Annotated[str, Form(max_length=32)] = "url_device",
) -> Response:
    sched = next((s for s in service.SCHEDULES if s.key == schedule), None)
    if sched is None:
        raise ProblemError(
            400, "Unknown schedule", f"choose one of {[s.key for s in service.SCHEDULES]}", field="schedule"
        )
    result = await service.pull_insights(
        sessionmaker,
        settings,
        schedule=f"manual:{sched.key}",
        dimensions=sched.dimensions,
        client=clarity_export,
    )
    await audit.record(
        db,
        "clarity_pull_now",
        request=request,
        actor=principal.agent,
        target_type="clarity_project",
        target=settings.clarity_project_id or None,
        outcome="ok" if result.ok else "failed",
        detail={"schedule": sched.key, "result": result.outcome, "calls_used": result.calls_used},
    )
    return RedirectResponse(f"/admin/clarity?pulled={result.outcome}", status_code=303)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@router.get("/api/admin/clarity/connection")
async def clarity_connection_api(
    db: DbDep, settings: SettingsDep, principal: AdminPrincipal
) -> dict[str, Any]:
    """The Clarity connection as the admin page shows it: status, budget, schedule, latest snapshot."""
    overview = await connection_overview(db, settings)
    data = _jsonable(overview)
    data["budgetLeft"] = overview.budget_left
    return data
