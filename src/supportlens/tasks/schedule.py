"""The periodic schedule: retention, partition maintenance, Clarity pulls, recordings enrichment, and a
sweep of issue-grouping work left pending.

Each is a procrastinate periodic task. Every worker runs procrastinate's periodic deferrer; a due run
is one row in procrastinate_periodic_defers, unique per (task, timestamp), so it is enqueued, and run,
once however many workers there are. The schedule follows the settings (the Clarity pulls per day, the
recordings interval); a task that is off is not registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supportlens.config import Settings
from supportlens.metrics import TASK_RUNS

if TYPE_CHECKING:
    import procrastinate

PERIODIC_QUEUE = "periodic"
RETENTION_TASK = "supportlens.retention"
PARTITIONS_TASK = "supportlens.event_partitions"
RECORDINGS_TASK = "supportlens.insights.recordings"
GROUPING_SWEEP_TASK = "supportlens.issues.group_sweep"


@dataclass(frozen=True)
class Periodic:
    name: str
    cron: str
    run: Callable[[Any], Awaitable[None]]  # run(runtime)


def hours_cron(per_day: int, minute: int) -> str:
    """`per_day` runs spread over the day (3 -> 00:mm, 08:mm and 16:mm UTC)."""
    hours = sorted({(24 * i) // per_day for i in range(per_day)})
    return f"{minute} {','.join(str(h) for h in hours)} * * *"


def minutes_cron(minutes: int) -> str:
    """Every `minutes` (from the top of the hour; whole hours past 60 minutes)."""
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{max(1, minutes // 60)} * * *"


async def _retention(runtime: Any) -> None:
    from supportlens.privacy.retention import run_retention

    await run_retention(runtime.state.engine, runtime.state.settings)


async def _partitions(runtime: Any) -> None:
    from supportlens.db.partitions import maintain

    await maintain(runtime.state.engine)


def _clarity_pull(key: str) -> Callable[[Any], Awaitable[None]]:
    async def run(runtime: Any) -> None:
        from supportlens.insights import service

        result = await service.pull_schedule(
            runtime.sessionmaker, runtime.settings, key, client=runtime.clarity_export
        )
        if result.outcome not in ("ok", "budget_exhausted", "not_configured"):
            raise RuntimeError(result.message)

    return run


async def _recordings(runtime: Any) -> None:
    from supportlens.insights import service

    result = await service.pull_recordings(
        runtime.state.sessionmaker,
        runtime.state.settings,
        client=runtime.state.clarity_recordings,
    )
    if result.outcome not in ("ok", "budget_exhausted", "disabled", "not_configured"):
        raise RuntimeError(result.message)


async def _group_sweep(runtime: Any) -> None:
    from supportlens.tasks.grouping import group_pending

    await group_pending(runtime.state.sessionmaker)


SPIKES_TASK = "supportlens.issues.spikes"
ALERT_DELIVERIES_TASK = "supportlens.issues.alert_deliveries"


async def _spikes(runtime: Any) -> None:
    from supportlens.issues import alerts

    async with runtime.state.sessionmaker() as db:
        await alerts.detect(db)


async def _alert_deliveries(runtime: Any) -> None:
    from supportlens.issues import alerts

    await alerts.deliver_pending(runtime.state.sessionmaker, runtime.state.settings)


WEEKLY_REPORT_TASK = "supportlens.issues.weekly_report"


async def _weekly_report(runtime: Any) -> None:
    from supportlens.issues import reports

    async with runtime.state.sessionmaker() as db:
        await reports.enqueue_weekly_delivery(db, runtime.state.settings.base_url)


def periodic_tasks(settings: Settings) -> list[Periodic]:
    """What runs on a schedule with these settings."""
    from supportlens.insights import service

    tasks = [
        Periodic(RETENTION_TASK, "17 3 * * *", _retention),
        # Startup ensures the partitions too; every 6 hours keeps a week ahead of today.
        Periodic(PARTITIONS_TASK, "7 */6 * * *", _partitions),
        # Events no grouping job saw: a batch that committed just after a worker took the waiting job
        # (tasks.grouping), or a job's last retry failed. One query when nothing is pending.
        Periodic(GROUPING_SWEEP_TASK, "* * * * *", _group_sweep),
    ]
    if settings.alerts_enabled:
        # A minute past each five-minute bucket closes, so the last bucket's counts are in.
        tasks.append(Periodic(SPIKES_TASK, "1-59/5 * * * *", _spikes))
        tasks.append(Periodic(ALERT_DELIVERIES_TASK, "* * * * *", _alert_deliveries))
        # Monday morning: the link to the week that just ended (queued once per week: its dedup key).
        tasks.append(Periodic(WEEKLY_REPORT_TASK, "7 6 * * 1", _weekly_report))
    if service.is_configured(settings):
        for i, sched in enumerate(service.SCHEDULES):
            per_day = sched.per_day(settings)
            if per_day > 0:
                tasks.append(
                    Periodic(
                        service.pull_task_name(sched.key),
                        hours_cron(per_day, 5 + i),
                        _clarity_pull(sched.key),
                    )
                )
        if settings.clarity_recordings_enabled:
            tasks.append(
                Periodic(
                    RECORDINGS_TASK, minutes_cron(settings.clarity_recordings_interval_minutes), _recordings
                )
            )
    return tasks


def _as_task(periodic: Periodic) -> Callable[..., Awaitable[None]]:
    async def run(context: procrastinate.JobContext, timestamp: int) -> None:
        runtime = (context.additional_context or {})["runtime"]
        try:
            await periodic.run(runtime)
        except Exception:
            TASK_RUNS.labels(periodic.name, "error").inc()
            raise
        TASK_RUNS.labels(periodic.name, "ok").inc()

    run.__name__ = periodic.name.rsplit(".", 1)[-1]
    return run


def register(app: procrastinate.App, settings: Settings) -> None:
    for periodic in periodic_tasks(settings):
        # The queueing lock keeps a slow run from piling up behind it; the lock keeps two from overlapping.
        task = app.task(
            name=periodic.name,
            queue=PERIODIC_QUEUE,
            lock=periodic.name,
            queueing_lock=periodic.name,
            pass_context=True,
        )(_as_task(periodic))
        if settings.run_schedule:
            app.periodic(cron=periodic.cron)(task)
