"""The task queue: procrastinate on the application's own PostgreSQL, and the workers that run it.

Jobs live in procrastinate's tables (installed by our Alembic migration 0012), so ingest enqueues a
mapping job in the same transaction as the batch it stores (tasks.mapping). Workers are procrastinate
workers: `supportlens serve` runs one inside the web process unless SUPPORTLENS_RUN_WORKER=false, and
`supportlens worker` runs dedicated ones. procrastinate talks to PostgreSQL through psycopg 3; the
application's SQLAlchemy engine stays on asyncpg (README, "Dependencies").

A worker killed mid-job (kill -9, out of memory) leaves its job "doing"; its heartbeat stops, and the
periodic task `retry_stalled_jobs` (also run once when a worker starts) puts jobs whose worker has been
silent for SUPPORTLENS_TASK_STALLED_SECONDS back in the queue. A job is its own transaction and the
mapping engine recomputes links from stored facts, so running one again maps its batch once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import procrastinate
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.metrics import MAPPING_LAG
from supportlens.tasks import attention, grouping, mapping, schedule

if TYPE_CHECKING:
    from supportlens.mapping.facts import FactKeys

log = logging.getLogger(__name__)

RETRY_STALLED_TASK = "supportlens.retry_stalled_jobs"
# Every worker logs through procrastinate.worker.<name>: one name, so one logger to filter.
WORKER_NAME = "supportlens"


@dataclass
class Runtime:
    """What tasks need from the application: its settings, database and vendor clients (the worker's
    additional context). The clients are built once with the runtime (`with_clients`), or are the app's
    own for the worker inside `serve`.

    `state` is the runtime itself (tasks written as `runtime.state.sessionmaker` read it so)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    dwolla: Any = None
    clarity_export: Any = None
    clarity_recordings: Any = None

    async def with_clients(self, stack: contextlib.AsyncExitStack) -> Runtime:
        """Build the Dwolla and Clarity clients this worker's jobs share; the stack closes them."""
        from supportlens.integrations.clarity.export_api import ClarityExportClient
        from supportlens.integrations.clarity.recordings import ClarityRecordingsClient
        from supportlens.integrations.dwolla.client import DwollaClient

        self.dwolla = DwollaClient(self.settings)
        self.clarity_export = ClarityExportClient(self.settings)
        self.clarity_recordings = ClarityRecordingsClient(self.settings)
        for client in (self.dwolla, self.clarity_export, self.clarity_recordings):
            stack.push_async_callback(client.aclose)
        return self

    @property
    def state(self) -> Runtime:
        return self

    @functools.cached_property
    def fact_keys(self) -> FactKeys:
        """The mapping engine's keyed hashes, on these settings' secret key."""
        from supportlens.mapping.facts import FactKeys

        return FactKeys.of(self.settings)


def conninfo(database_url: str) -> str:
    """The libpq connection string of the application's SQLAlchemy URL (any driver)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _runtime(context: procrastinate.JobContext) -> Runtime:
    runtime = (context.additional_context or {}).get("runtime")
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the worker was started without the SupportLens runtime")
    return runtime


async def _map_session(
    context: procrastinate.JobContext,
    session_id: str,
    email: str | None = None,
    client_ip: str | None = None,
    acked_at: str | None = None,
) -> None:
    runtime = _runtime(context)
    async with mapping.in_flight():
        await mapping.map_session(
            runtime.sessionmaker,
            session_id=session_id,
            email=email,
            client_ip=client_ip,
            keys=runtime.fact_keys,
        )
    if acked_at:
        # The oldest batch this job stands for (a coalesced run keeps the first one's time).
        lag = datetime.now(tz=UTC) - datetime.fromisoformat(acked_at)
        MAPPING_LAG.observe(max(0.0, lag.total_seconds()))


async def _group_issues(context: procrastinate.JobContext) -> None:
    await grouping.group_pending(_runtime(context).sessionmaker)


async def _retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    await retry_stalled_jobs(context.app, _runtime(context).settings)


async def retry_stalled_jobs(app: procrastinate.App, settings: Settings) -> int:
    """Put the jobs of workers silent for task_stalled_seconds back in the queue. Returns how many."""
    stalled = list(
        await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.task_stalled_seconds)
    )
    for job in stalled:
        log.warning("retrying a stalled job", extra={"task": job.task_name, "job_id": job.id})
        await app.job_manager.retry_job(job)
    return len(stalled)


def make_queue(settings: Settings) -> procrastinate.App:
    """The procrastinate app for these settings: its connection, the tasks and the periodic schedule."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.require_database_url()),
            kwargs={"application_name": "supportlens-worker"},
        ),
    )
    app.task(
        name=mapping.MAPPING_TASK,
        queue=mapping.MAPPING_QUEUE,
        pass_context=True,
        # A failure (a purge deleting the session mid-job, a lost connection) is tried again: the job
        # maps from stored facts, so a second run changes nothing the first one did.
        retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2),
    )(_map_session)
    app.task(
        name=grouping.GROUPING_TASK,
        queue=grouping.GROUPING_QUEUE,
        pass_context=True,
        # Each step commits its grouping with the deletion of its pending rows: a retry takes what is left.
        retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2),
    )(_group_issues)
    retry_stalled = app.task(
        name=RETRY_STALLED_TASK, queue="periodic", queueing_lock=RETRY_STALLED_TASK, pass_context=True
    )(_retry_stalled_jobs)
    app.periodic(cron="* * * * *")(retry_stalled)
    attention.register(app, _runtime)
    schedule.register(app, settings)
    return app


async def run_worker(
    queue: procrastinate.App,
    runtime: Runtime,
    *,
    concurrency: int,
    install_signal_handlers: bool = False,
) -> None:
    """Run a worker until cancelled: first retry what dead workers left, then take jobs."""
    with contextlib.suppress(Exception):
        await retry_stalled_jobs(queue, runtime.settings)
    await queue.run_worker_async(
        concurrency=concurrency,
        name=WORKER_NAME,
        wait=True,
        delete_jobs="successful",
        additional_context={"runtime": runtime},
        install_signal_handlers=install_signal_handlers,
        update_heartbeat_interval=min(10.0, runtime.settings.task_stalled_seconds / 3),
        stalled_worker_timeout=runtime.settings.task_stalled_seconds,
        shutdown_graceful_timeout=10.0,
    )


@contextlib.asynccontextmanager
async def running_worker(
    runtime: Runtime, *, concurrency: int | None = None
) -> AsyncIterator[procrastinate.App]:
    """A worker running in this process's event loop for as long as the context lasts (serve, tests)."""
    queue = make_queue(runtime.settings)
    async with queue.open_async():
        task = asyncio.create_task(
            run_worker(queue, runtime, concurrency=concurrency or runtime.settings.worker_concurrency),
            name="supportlens-worker",
        )
        try:
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_until_empty(runtime: Runtime, *, queues: tuple[str, ...]) -> None:
    """Run the jobs waiting now, and those they lead to, then return (benches, one-off maintenance)."""
    queue = make_queue(runtime.settings)
    async with queue.open_async():
        await queue.run_worker_async(
            queues=list(queues),  # psycopg sends a list as an array (a tuple would be a record)
            wait=False,
            concurrency=1,
            name=WORKER_NAME,
            delete_jobs="successful",
            additional_context={"runtime": runtime},
            install_signal_handlers=False,
        )


async def start_in_process_worker(
    runtime: Runtime, stack: contextlib.AsyncExitStack
) -> procrastinate.App | None:
    """Run a worker inside the web process when settings.run_worker; the stack stops it (app.py)."""
    if not runtime.settings.run_worker:
        return None
    return await stack.enter_async_context(running_worker(runtime))


class _WithoutJobArguments(logging.Filter):
    """procrastinate logs each job's arguments; a mapping job's hold a customer's e-mail and address.

    Its lines keep the task name and job id, without the arguments."""

    _CALL = re.compile(r"(\w[\w.:]*\[\d+\])\([^)]*\)")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "(" in record.msg:
            record.msg = self._CALL.sub(r"\1(…)", record.msg)
        job = getattr(record, "job", None)
        if isinstance(job, dict):
            record.job = {k: v for k, v in job.items() if k not in ("task_kwargs", "call_string")}
        return True


def _quiet_job_arguments() -> None:
    # Filters apply where a record is logged: the loggers that log jobs.
    for name in (f"procrastinate.worker.{WORKER_NAME}", "procrastinate.worker", "procrastinate.jobs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutJobArguments) for f in logger.filters):
            logger.addFilter(_WithoutJobArguments())


_quiet_job_arguments()
