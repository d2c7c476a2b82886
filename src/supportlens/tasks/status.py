"""What the queue is doing: its backlog (for /readyz) and the periodic tasks' status (for the admin)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.tasks.schedule import periodic_tasks


@dataclass
class Backlog:
    todo: int
    doing: int
    oldest_todo_seconds: float  # 0 when nothing waits
    failed: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "todo": self.todo,
            "doing": self.doing,
            "oldestTodoSeconds": round(self.oldest_todo_seconds, 3),
            "failed": self.failed,
        }


_BACKLOG = text(
    "SELECT count(*) FILTER (WHERE j.status = 'todo'), count(*) FILTER (WHERE j.status = 'doing'), "
    "count(*) FILTER (WHERE j.status = 'failed'), "
    "extract(epoch FROM now() - min(e.at) FILTER (WHERE j.status = 'todo')) "
    "FROM procrastinate_jobs j LEFT JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred' "
    "WHERE j.status IN ('todo', 'doing', 'failed') "
    "AND (CAST(:queue AS text) IS NULL OR j.queue_name = :queue)"
)


async def backlog(db: AsyncSession, queue: str | None = None) -> Backlog:
    """Jobs waiting and running (one queue, or all), and how long the oldest has waited."""
    row = (await db.execute(_BACKLOG, {"queue": queue})).one()
    return Backlog(
        todo=int(row[0]), doing=int(row[1]), failed=int(row[2]), oldest_todo_seconds=float(row[3] or 0)
    )


async def wait_until_drained(
    sessionmaker: Any, *, queue: str | None = "mapping", within: float = 60.0
) -> float:
    """Wait until no job of `queue` waits or runs (tests, benches). Returns the seconds waited.

    Raises TimeoutError after `within` seconds, with the backlog in its message."""
    started = time.monotonic()
    while True:
        async with sessionmaker() as db:
            now = await backlog(db, queue)
        if now.todo == 0 and now.doing == 0:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise TimeoutError(f"the queue did not drain in {within} s: {now.as_dict()}")
        await asyncio.sleep(0.02)


@dataclass
class TaskStatus:
    name: str
    cron: str
    interval_seconds: int
    next_run_at: datetime | None
    last_run_at: datetime | None  # when its latest run was due
    last_status: str | None  # ok | error | None (never ran)
    running: bool


_LATEST = text(
    "SELECT d.task_name, max(d.defer_timestamp) FROM procrastinate_periodic_defers d GROUP BY d.task_name"
)
_STATES = text(
    "SELECT task_name, bool_or(status = 'doing'), "
    "max(CAST(args->>'timestamp' AS bigint)) FILTER (WHERE status = 'failed') "
    "FROM procrastinate_jobs WHERE queue_name = 'periodic' GROUP BY task_name"
)


async def task_statuses(db: AsyncSession, settings: Settings, prefix: str = "") -> list[TaskStatus]:
    """The periodic tasks of these settings with their next run, and their last from the queue.

    Successful jobs are deleted once done (see queue.run_worker): the last run is the latest due time
    recorded (procrastinate_periodic_defers), "error" when the job of that run failed, else "ok"."""
    now = datetime.now(tz=UTC)
    latest = {name: ts for name, ts in (await db.execute(_LATEST)).all()}
    states = {name: (bool(doing), failed) for name, doing, failed in (await db.execute(_STATES)).all()}
    out = []
    for task in periodic_tasks(settings):
        if not task.name.startswith(prefix):
            continue
        it = croniter(task.cron, now)
        following = it.get_next(datetime)
        interval = int((it.get_next(datetime) - following).total_seconds())
        ts = latest.get(task.name)
        doing, failed_at = states.get(task.name, (False, None))
        last = datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None
        status = None if last is None or doing else ("error" if failed_at == ts else "ok")
        out.append(
            TaskStatus(
                name=task.name,
                cron=task.cron,
                interval_seconds=interval,
                next_run_at=following,
                last_run_at=last,
                last_status=status,
                running=doing,
            )
        )
    return out
