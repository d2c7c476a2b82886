"""Spending the Clarity call budget, storing snapshots, recordings enrichment and the admin's overview
(site context per page from the snapshots: `site_context.py`).

The Data Export API allows 10 calls per project per day. Every call first takes one unit of the
day's budget with one atomic UPDATE (``calls_used < limit``) committed BEFORE the request is sent,
so replicas sharing the database together never send an 11th call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.insights.models import ClarityCallBudget, ClarityConnection, ClaritySnapshot
from supportlens.integrations.clarity.export_api import (
    ClarityExportClient,
    ClarityExportError,
    ClarityQuotaExhausted,
)
from supportlens.integrations.clarity.models import parse_live_insights
from supportlens.integrations.clarity.recordings import ClarityRecordingsClient

log = logging.getLogger(__name__)

EXPORT = "export"
RECORDINGS = "recordings"


# --- Budget ----------------------------------------------------------------------------------------


def today() -> date:
    return utcnow().astimezone(UTC).date()


async def reserve_call(db: AsyncSession, project_id: str, api: str, limit: int) -> int | None:
    """Take one call of today's budget. Returns the calls used including this one, or None (refused).

    Commits before returning: the reservation is visible to every replica before the call is sent.
    """
    day = today()
    now = utcnow()
    await db.execute(
        insert(ClarityCallBudget)
        .values(project_id=project_id, api=api, day=day, calls_used=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    result = await db.execute(
        update(ClarityCallBudget)
        .where(
            ClarityCallBudget.project_id == project_id,
            ClarityCallBudget.api == api,
            ClarityCallBudget.day == day,
            ClarityCallBudget.calls_used < limit,
        )
        .values(calls_used=ClarityCallBudget.calls_used + 1, updated_at=now)
        .returning(ClarityCallBudget.calls_used)
        .execution_options(synchronize_session=False)
    )
    used = result.scalar_one_or_none()
    await db.commit()
    return int(used) if used is not None else None


async def exhaust_budget(db: AsyncSession, project_id: str, api: str, limit: int) -> None:
    """Clarity said 429: spend the rest of today's budget so nobody asks again before tomorrow."""
    await db.execute(
        update(ClarityCallBudget)
        .where(
            ClarityCallBudget.project_id == project_id,
            ClarityCallBudget.api == api,
            ClarityCallBudget.day == today(),
            ClarityCallBudget.calls_used < limit,
        )
        .values(calls_used=limit, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await db.commit()


async def calls_used_today(db: AsyncSession, project_id: str, api: str = EXPORT) -> int:
    value = await db.scalar(
        select(ClarityCallBudget.calls_used).where(
            ClarityCallBudget.project_id == project_id,
            ClarityCallBudget.api == api,
            ClarityCallBudget.day == today(),
        )
    )
    return int(value or 0)


# --- Connection status -----------------------------------------------------------------------------


async def _connection(db: AsyncSession, project_id: str) -> ClarityConnection:
    await db.execute(
        insert(ClarityConnection)
        .values(project_id=project_id, status="unknown", recordings_matched=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    conn = await db.get(ClarityConnection, project_id, populate_existing=True)
    assert conn is not None
    return conn


async def record_outcome(
    db: AsyncSession, project_id: str, *, status: str, status_code: int | None, error: str | None
) -> None:
    conn = await _connection(db, project_id)
    now = utcnow()
    conn.status = status
    conn.last_status_code = status_code
    conn.last_pull_at = now
    if error:
        conn.last_error = error[:2000]
        conn.last_error_at = now
    else:
        conn.last_success_at = now
    await db.commit()


# --- Pulls -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullSchedule:
    key: str
    label: str
    dimensions: tuple[str, ...]
    per_day_setting: str

    def per_day(self, settings: Settings) -> int:
        return int(getattr(settings, self.per_day_setting))


SCHEDULES: tuple[PullSchedule, ...] = (
    PullSchedule("url_device", "URL × Device", ("URL", "Device"), "clarity_url_pulls_per_day"),
    PullSchedule("traffic", "Site totals", (), "clarity_traffic_pulls_per_day"),
)


def pull_task_name(key: str) -> str:
    """The periodic task of a pull schedule (tasks/schedule.py runs it; the admin page shows its runs)."""
    return f"supportlens.insights.pull.{key}"


def is_configured(settings: Settings) -> bool:
    return bool(settings.clarity_project_id and settings.clarity_api_token.get_secret_value())


@dataclass
class PullResult:
    outcome: str  # ok | not_configured | budget_exhausted | unauthorized | forbidden | quota_exhausted | ...
    message: str
    calls_used: int | None = None
    snapshot_id: Any = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


async def pull_insights(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    schedule: str,
    dimensions: tuple[str, ...] | list[str],
    num_of_days: int | None = None,
    client: ClarityExportClient | None = None,
) -> PullResult:
    """One budgeted call to the Data Export API; the answer becomes a snapshot. Never raises for HTTP.

    `client`: the one built at start-up; without it, one for this call."""
    if not is_configured(settings):
        return PullResult("not_configured", "Clarity is not configured (project id and API token).")
    project = settings.clarity_project_id
    limit = settings.clarity_daily_call_budget
    days = num_of_days or settings.clarity_pull_num_of_days
    async with sessionmaker() as db:
        used = await reserve_call(db, project, EXPORT, limit)
        if used is None:
            msg = (
                f"Not sent: today's {limit} Data Export calls are used up; "
                "the next pull waits for tomorrow (UTC)."
            )
            conn = await _connection(db, project)
            conn.last_error, conn.last_error_at = msg, utcnow()
            await db.commit()
            return PullResult("budget_exhausted", msg, calls_used=limit)
    own = client is None
    export = client or ClarityExportClient(settings)
    try:
        answer = await export.fetch(days, list(dimensions))
    except ClarityExportError as exc:
        async with sessionmaker() as db:
            if isinstance(exc, ClarityQuotaExhausted):
                await exhaust_budget(db, project, EXPORT, limit)
            await record_outcome(db, project, status=exc.status, status_code=exc.status_code, error=str(exc))
        log.warning("clarity export pull %s failed: %s", schedule, exc)
        return PullResult(exc.status, str(exc), calls_used=used)
    except ValueError as exc:  # a request we refuse to send (bad dimensions): nothing was spent upstream
        async with sessionmaker() as db:
            await record_outcome(db, project, status="bad_request", status_code=None, error=str(exc))
        return PullResult("bad_request", str(exc), calls_used=used)
    finally:
        if own:
            await export.aclose()
    metrics = parse_live_insights(answer.payload)
    async with sessionmaker() as db:
        snap = ClaritySnapshot(
            project_id=project,
            pulled_at=utcnow(),
            schedule=schedule,
            num_of_days=days,
            dimensions=[str(d) for d in dimensions],
            payload=answer.payload,
            metric_count=len(metrics),
            row_count=sum(len(m.rows) for m in metrics),
        )
        db.add(snap)
        await db.commit()
        await record_outcome(db, project, status="ok", status_code=answer.status_code, error=None)
        return PullResult(
            "ok",
            f"Stored {snap.metric_count} metrics ({snap.row_count} rows).",
            calls_used=used,
            snapshot_id=snap.id,
        )


async def pull_schedule(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    key: str,
    client: ClarityExportClient | None,
) -> PullResult:
    sched = next(s for s in SCHEDULES if s.key == key)
    return await pull_insights(
        sessionmaker, settings, schedule=sched.key, dimensions=sched.dimensions, client=client
    )


# --- Recordings enrichment -------------------------------------------------------------------------


@dataclass
class RecordingsResult:
    outcome: str
    message: str
    fetched: int = 0
    matched: int = 0
    skipped: int = 0


async def enrich_sessions(db: AsyncSession, items: list[Any]) -> int:
    """Store Clarity's own figures on the sessions whose (project, user, session) ids match.

    Returns how many sessions matched."""
    from supportlens.sessions.models import UserSession

    if not items:
        return 0
    by_ids = {(i.project_id, i.user_id, i.session_id): i for i in items}
    session_ids = list({k[2] for k in by_ids})
    matched = 0
    for start in range(0, len(session_ids), 500):
        chunk = session_ids[start : start + 500]
        rows = (await db.scalars(select(UserSession).where(UserSession.clarity_session_id.in_(chunk)))).all()
        for row in rows:
            item = by_ids.get((row.clarity_project_id, row.clarity_user_id, row.clarity_session_id))
            if item is None:
                continue
            data = dict(row.clarity_data or {})
            data.update(item.clarity_data())
            data["enrichedAt"] = utcnow().isoformat()
            row.clarity_data = data
            row.clarity_confirmed = True
            matched += 1
    await db.commit()
    return matched


async def pull_recordings(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
    client: ClarityRecordingsClient | None = None,
) -> RecordingsResult:
    """One budgeted call to the recordings list; matching sessions get Clarity's own figures.

    `client`: the one built at start-up; without it, one for this call."""
    if not settings.clarity_recordings_enabled:
        return RecordingsResult("disabled", "The recordings list is turned off.")
    if not is_configured(settings):
        return RecordingsResult("not_configured", "Clarity is not configured.")
    project = settings.clarity_project_id
    async with sessionmaker() as db:
        if await reserve_call(db, project, RECORDINGS, settings.clarity_recordings_daily_calls) is None:
            return RecordingsResult("budget_exhausted", "Today's recordings-list calls are used up.")
    end = now or utcnow()
    start = end - timedelta(minutes=settings.clarity_recordings_window_minutes)
    own = client is None
    recordings = client or ClarityRecordingsClient(settings)
    try:
        items, skipped = await recordings.sample(start, end, count=250)
    except ClarityExportError as exc:
        async with sessionmaker() as db:
            conn = await _connection(db, project)
            conn.recordings_status = exc.status
            conn.recordings_last_pull_at = utcnow()
            conn.recordings_last_error = str(exc)[:2000]
            await db.commit()
        log.warning("clarity recordings pull failed: %s", exc)
        return RecordingsResult(exc.status, str(exc))
    finally:
        if own:
            await recordings.aclose()
    async with sessionmaker() as db:
        matched = await enrich_sessions(db, items)
        conn = await _connection(db, project)
        conn.recordings_status = "ok"
        conn.recordings_last_pull_at = utcnow()
        conn.recordings_last_error = None
        conn.recordings_matched = (conn.recordings_matched or 0) + matched
        await db.commit()
    return RecordingsResult(
        "ok",
        f"{len(items)} recordings read, {matched} sessions confirmed, {skipped} unreadable items skipped.",
        fetched=len(items),
        matched=matched,
        skipped=skipped,
    )
