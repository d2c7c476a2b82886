"""The job runner: interval schedules, run on exactly one process.

Any domain registers work with ``register_job(name, interval_seconds, fn)`` where ``fn(app)`` is an
async function and ``interval_seconds`` a number or a function of the Settings (returning None turns
the job off). Every process running jobs (settings.run_jobs) ticks; a due job is claimed with one
atomic statement on its ``job_leases`` row::

    UPDATE job_leases SET holder = me, expires_at = now + lease
     WHERE name = :job AND next_run_at <= now AND (expires_at IS NULL OR expires_at < now)

Exactly one process sees ``rowcount == 1`` (PostgreSQL row lock with re-check under READ COMMITTED;
SQLite's single writer), runs the job, then sets ``next_run_at`` and releases the lease. A process that
dies mid-run leaves a lease that expires, so another one takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.jobs.models import JobLease
from supportlens.metrics import JOB_RUNS

log = logging.getLogger(__name__)

JobFn = Callable[[Any], Awaitable[Any]]
Interval = float | int | Callable[[Settings], float | int | None]


@dataclass
class Job:
    name: str
    interval: Interval
    fn: JobFn
    lease_seconds: float = 900.0
    first_run_delay: float = 0.0

    def interval_for(self, settings: Settings) -> float | None:
        value = self.interval(settings) if callable(self.interval) else self.interval
        if value is None or value <= 0:
            return None
        return float(value)


JOBS: dict[str, Job] = {}


def register_job(
    name: str,
    interval_seconds: Interval,
    fn: JobFn,
    *,
    lease_seconds: float = 900.0,
    first_run_delay: float = 0.0,
) -> Job:
    """Register (or replace) a job. `fn(app)` is awaited with the FastAPI app when the job is due.

    `interval_seconds`: seconds between runs, or `f(settings) -> seconds | None` (None: job off).
    `lease_seconds`: how long a run may take before another process may assume it died.
    `first_run_delay`: the first ever run waits this long after the job's row is created.
    """
    job = Job(name, interval_seconds, fn, lease_seconds=lease_seconds, first_run_delay=first_run_delay)
    JOBS[name] = job
    return job


def new_holder_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobStatus:
    name: str
    interval_seconds: int
    next_run_at: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None
    last_holder: str | None
    running_on: str | None
    run_count: int


async def job_statuses(db: AsyncSession, prefix: str = "") -> list[JobStatus]:
    rows = (await db.scalars(select(JobLease).order_by(JobLease.name))).all()
    now = utcnow()
    out = []
    for r in rows:
        if not r.name.startswith(prefix):
            continue
        running = r.holder if (r.holder and r.expires_at and r.expires_at > now) else None
        out.append(
            JobStatus(
                name=r.name,
                interval_seconds=r.interval_seconds,
                next_run_at=r.next_run_at,
                last_started_at=r.last_started_at,
                last_finished_at=r.last_finished_at,
                last_status=r.last_status,
                last_error=r.last_error,
                last_holder=r.last_holder,
                running_on=running,
                run_count=r.run_count,
            )
        )
    return out


async def ensure_job_row(db: AsyncSession, name: str, interval: float, first_run_delay: float = 0.0) -> None:
    """Create the job's row once (first run after `first_run_delay`); keep its interval current."""
    now = utcnow()
    values = {
        "name": name,
        "next_run_at": now + timedelta(seconds=first_run_delay),
        "interval_seconds": int(interval),
        "run_count": 0,
    }
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await db.execute(insert(JobLease).values(**values).on_conflict_do_nothing())
    await db.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.interval_seconds != int(interval))
        .values(interval_seconds=int(interval))
    )
    await db.commit()


async def try_claim(db: AsyncSession, name: str, holder: str, lease_seconds: float) -> bool:
    """The atomic claim: True for exactly one caller while the job is due and not leased."""
    now = utcnow()
    result = await db.execute(
        update(JobLease)
        .where(
            JobLease.name == name,
            JobLease.next_run_at <= now,
            (JobLease.expires_at.is_(None)) | (JobLease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + timedelta(seconds=lease_seconds), last_started_at=now)
        .execution_options(synchronize_session=False)
    )
    await db.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


async def release(
    db: AsyncSession, name: str, holder: str, interval: float, started: datetime, error: str | None
) -> None:
    now = utcnow()
    next_run = max(started + timedelta(seconds=interval), now)
    await db.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(
            holder=None,
            expires_at=None,
            next_run_at=next_run,
            last_finished_at=now,
            last_status="error" if error else "ok",
            last_error=error,
            last_holder=holder,
            run_count=JobLease.run_count + 1,
        )
        .execution_options(synchronize_session=False)
    )
    await db.commit()


async def run_now(db: AsyncSession, name: str) -> None:
    """Make a job due at once (the next tick of some process runs it)."""
    await db.execute(update(JobLease).where(JobLease.name == name).values(next_run_at=utcnow()))
    await db.commit()


class JobRunner:
    """Ticks every `tick_seconds`; runs the registered jobs that are due and that it manages to claim."""

    def __init__(
        self,
        app: Any,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        settings: Settings | None = None,
        holder: str | None = None,
        tick_seconds: float | None = None,
        jobs: dict[str, Job] | None = None,
    ) -> None:
        self.app = app
        self.settings: Settings = settings or app.state.settings
        self.sessionmaker = sessionmaker or app.state.sessionmaker
        self.holder = holder or new_holder_id()
        self.tick_seconds = tick_seconds if tick_seconds is not None else self.settings.jobs_tick_seconds
        self._jobs = jobs
        self._task: asyncio.Task[None] | None = None
        self.ran: list[str] = []  # names of the jobs this runner ran (for status and tests)

    @property
    def jobs(self) -> dict[str, Job]:
        return self._jobs if self._jobs is not None else JOBS

    async def run_due_once(self) -> list[str]:
        """One tick: claim and run every due job. Returns the names this process ran."""
        ran = []
        for job in list(self.jobs.values()):
            interval = job.interval_for(self.settings)
            if interval is None:
                continue
            async with self.sessionmaker() as db:
                await ensure_job_row(db, job.name, interval, job.first_run_delay)
                if not await try_claim(db, job.name, self.holder, job.lease_seconds):
                    continue
            started = utcnow()
            error: str | None = None
            try:
                await job.fn(self.app)
                JOB_RUNS.labels(job.name, "ok").inc()
            except asyncio.CancelledError:
                error = "cancelled at shutdown"
                JOB_RUNS.labels(job.name, "cancelled").inc()
                with contextlib.suppress(Exception):
                    async with self.sessionmaker() as db:
                        await asyncio.shield(release(db, job.name, self.holder, interval, started, error))
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                JOB_RUNS.labels(job.name, "error").inc()
                log.exception("job %s failed", job.name)
            async with self.sessionmaker() as db:
                await release(db, job.name, self.holder, interval, started, error)
            ran.append(job.name)
            self.ran.append(job.name)
        return ran

    async def _loop(self) -> None:
        await asyncio.sleep(min(self.tick_seconds, 1.0))
        while True:
            try:
                await self.run_due_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job runner tick failed")
            await asyncio.sleep(self.tick_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"job-runner-{self.holder}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


async def start_jobs(app: Any, stack: AsyncExitStack) -> None:
    """STARTUP_HOOK: run jobs in this process when settings.run_jobs."""
    settings: Settings = app.state.settings
    if not settings.run_jobs:
        return
    runner = JobRunner(app)
    app.state.job_runner = runner
    runner.start()
    stack.push_async_callback(runner.stop)
