"""What the admin sees on /admin/clarity: the connection's status in words, the call budget, each pull
schedule with its next and last run, and the newest snapshot with the pages that stand out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.insights.models import ClarityConnection
from supportlens.insights.service import (
    RECORDINGS,
    SCHEDULES,
    calls_used_today,
    is_configured,
    pull_task_name,
)
from supportlens.insights.site_context import PageContext, latest_snapshots, site_context
from supportlens.integrations.clarity.models import page_path, parse_live_insights

STATUS_WORDS = {
    "ok": ("ok", "Connected: the last call succeeded."),
    "unauthorized": ("unauthorized", "Clarity refused the API token (401). Create a new token in Clarity."),
    "forbidden": ("forbidden", "Clarity answered 403: the token has no access to this project."),
    "quota_exhausted": (
        "quota exhausted",
        "Today's 10 Data Export calls are used up; pulls resume tomorrow.",
    ),
    "not_configured": (
        "not configured",
        "Set SUPPORTLENS_CLARITY_PROJECT_ID and SUPPORTLENS_CLARITY_API_TOKEN.",
    ),
    "unknown": ("not pulled yet", "No call made yet; the first scheduled pull will tell."),
    "bad_request": ("bad request", "Clarity rejected the request (400)."),
    "error": ("error", "The last call failed; see the last error."),
}


@dataclass
class ScheduleRow:
    key: str
    label: str
    dimensions: tuple[str, ...]
    per_day: int
    next_run_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None


@dataclass
class SnapshotSummary:
    pulled_at: datetime
    schedule: str
    num_of_days: int
    dimensions: list[str]
    metric_count: int
    row_count: int
    metrics: list[str]
    top_pages: list[PageContext]


@dataclass
class ConnectionOverview:
    configured: bool
    project_id: str
    status: str
    status_label: str
    status_help: str
    last_status_code: int | None
    last_pull_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    calls_used: int
    call_budget: int
    next_pull_at: datetime | None
    schedules: list[ScheduleRow]
    latest: SnapshotSummary | None
    recordings_enabled: bool
    recordings_status: str | None
    recordings_last_pull_at: datetime | None
    recordings_last_error: str | None
    recordings_matched: int
    recordings_calls_used: int

    @property
    def budget_left(self) -> int:
        return max(0, self.call_budget - self.calls_used)


async def connection_overview(db: AsyncSession, settings: Settings) -> ConnectionOverview:
    project = settings.clarity_project_id
    configured = is_configured(settings)
    conn = await db.get(ClarityConnection, project) if project else None
    used = await calls_used_today(db, project) if project else 0
    rec_used = await calls_used_today(db, project, RECORDINGS) if project else 0
    limit = settings.clarity_daily_call_budget
    status = "not_configured" if not configured else (conn.status if conn else "unknown")
    if configured and used >= limit and status in ("ok", "unknown"):
        status = "quota_exhausted"
    label, help_text = STATUS_WORDS.get(status, (status, ""))
    schedules = await _schedule_rows(db, settings, configured)
    upcoming = [r.next_run_at for r in schedules if r.next_run_at is not None]
    latest = await _latest_snapshot(db, project)
    return ConnectionOverview(
        configured=configured,
        project_id=project,
        status=status,
        status_label=label,
        status_help=help_text,
        last_status_code=conn.last_status_code if conn else None,
        last_pull_at=conn.last_pull_at if conn else None,
        last_success_at=conn.last_success_at if conn else None,
        last_error=conn.last_error if conn else None,
        last_error_at=conn.last_error_at if conn else None,
        calls_used=used,
        call_budget=limit,
        next_pull_at=min(upcoming) if upcoming else None,
        schedules=schedules,
        latest=latest,
        recordings_enabled=settings.clarity_recordings_enabled,
        recordings_status=conn.recordings_status if conn else None,
        recordings_last_pull_at=conn.recordings_last_pull_at if conn else None,
        recordings_last_error=conn.recordings_last_error if conn else None,
        recordings_matched=conn.recordings_matched if conn else 0,
        recordings_calls_used=rec_used,
    )


async def _schedule_rows(db: AsyncSession, settings: Settings, configured: bool) -> list[ScheduleRow]:
    """Each pull schedule with its calls a day and its task's next and last runs."""
    from supportlens.tasks.status import task_statuses

    jobs = {j.name: j for j in await task_statuses(db, settings, "supportlens.insights.")}
    schedules = []
    for s in SCHEDULES:
        j = jobs.get(pull_task_name(s.key))
        schedules.append(
            ScheduleRow(
                key=s.key,
                label=s.label,
                dimensions=s.dimensions,
                per_day=s.per_day(settings) if configured else 0,
                next_run_at=j.next_run_at if (j and configured and s.per_day(settings) > 0) else None,
                last_finished_at=j.last_run_at if j else None,
                last_status=j.last_status if j else None,
                last_error=None,  # a failed run's error is in the logs (the connection keeps Clarity's)
            )
        )
    return schedules


async def _latest_snapshot(db: AsyncSession, project: str | None) -> SnapshotSummary | None:
    """The newest snapshot pulled, with the five pages whose metrics stand out most."""
    by_url, site_snap = await latest_snapshots(db, project or None)
    newest = max((s for s in (by_url, site_snap) if s is not None), key=lambda s: s.pulled_at, default=None)
    if newest is None:
        return None
    metrics = parse_live_insights(newest.payload)
    top: list[PageContext] = []
    if by_url is not None:
        paths = {
            page_path(r.dimensions["URL"])
            for m in parse_live_insights(by_url.payload)
            for r in m.rows
            if "URL" in r.dimensions
        }
        contexts = await site_context(db, sorted(paths), project_id=project or None)
        top = sorted(
            (c for c in contexts.values() if c.found),
            key=lambda c: max((m.ratio or 0 for m in c.metrics), default=0),
            reverse=True,
        )[:5]
    return SnapshotSummary(
        pulled_at=newest.pulled_at,
        schedule=newest.schedule,
        num_of_days=newest.num_of_days,
        dimensions=list(newest.dimensions or []),
        metric_count=newest.metric_count,
        row_count=newest.row_count,
        metrics=[m.name for m in metrics],
        top_pages=top,
    )
