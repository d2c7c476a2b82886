"""/reports/weekly?week=YYYY-Www (and .csv / .json): the weekly report of issues, frustration and
conversions. Any signed-in agent; viewers get issue titles through the PII masker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from supportlens.audit import service as audit
from supportlens.auth.deps import CurrentPrincipal, DbDep
from supportlens.issues import reports
from supportlens.problems import ProblemError
from supportlens.web.pages import render
from supportlens.web.viewer import is_viewer

router = APIRouter(tags=["reports"])

WeekParam = Annotated[str | None, Query(max_length=10, description="ISO week, YYYY-Www")]


async def _report(
    request: Request, db: Any, principal: Any, week: str | None, fmt: str
) -> reports.WeeklyReport:
    week = week or reports.week_of(datetime.now(tz=UTC) - timedelta(days=7))
    try:
        report = reports.as_seen(await reports.build(db, week), is_viewer(principal))
    except reports.WeekError as exc:
        raise ProblemError(400, "Invalid week", str(exc), field="week") from None
    await audit.record(
        db,
        "weekly_report_viewed",
        request=request,
        actor=principal.agent,
        target_type="weekly_report",
        target=report.week,
        detail={"format": fmt},
    )
    return report


@router.get("/reports/weekly", response_class=HTMLResponse, include_in_schema=False)
async def weekly_page(
    request: Request, db: DbDep, principal: CurrentPrincipal, week: WeekParam = None
) -> HTMLResponse:
    report = await _report(request, db, principal, week, "html")
    prev_week = reports.week_of(report.start - timedelta(days=7))
    next_week = reports.week_of(report.end)
    has_next = report.end <= datetime.now(tz=UTC)
    return render(
        request,
        "reports/weekly.html",
        {"r": report, "prev_week": prev_week, "next_week": next_week if has_next else None},
    )


@router.get("/reports/weekly.csv", include_in_schema=False)
async def weekly_csv(
    request: Request, db: DbDep, principal: CurrentPrincipal, week: WeekParam = None
) -> Response:
    report = await _report(request, db, principal, week, "csv")
    return Response(
        reports.as_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="supportlens-weekly-{report.week}.csv"'},
    )


@router.get("/reports/weekly.json", include_in_schema=False)
async def weekly_json(
    request: Request, db: DbDep, principal: CurrentPrincipal, week: WeekParam = None
) -> JSONResponse:
    report = await _report(request, db, principal, week, "json")
    return JSONResponse(reports.as_json(report))
