"""The Clarity schedule: budgeted insight pulls and the optional recordings pull, as jobs."""

from __future__ import annotations

from typing import Any

from supportlens.clarity import service
from supportlens.config import Settings
from supportlens.jobs.runner import register_job

RECORDINGS_JOB = "clarity.recordings"


def _pull_job(key: str) -> Any:
    async def run(app: Any) -> None:
        result = await service.pull_schedule(app, key)
        if result.outcome not in ("ok", "budget_exhausted", "not_configured"):
            raise RuntimeError(result.message)

    return run


async def _recordings_job(app: Any) -> None:
    result = await service.pull_recordings(app.state.sessionmaker, app.state.settings)
    if result.outcome not in ("ok", "budget_exhausted", "disabled", "not_configured"):
        raise RuntimeError(result.message)


def _recordings_interval(settings: Settings) -> float | None:
    if not settings.clarity_recordings_enabled or not service.is_configured(settings):
        return None
    return settings.clarity_recordings_interval_minutes * 60.0


def register() -> None:
    for i, sched in enumerate(service.SCHEDULES):
        register_job(
            sched.job_name, sched.interval, _pull_job(sched.key), lease_seconds=300, first_run_delay=2.0 * i
        )
    register_job(
        RECORDINGS_JOB, _recordings_interval, _recordings_job, lease_seconds=300, first_run_delay=5.0
    )


register()
