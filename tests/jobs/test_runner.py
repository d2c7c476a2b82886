"""The job runner: each due job runs on exactly one process; status, errors and take-over of dead leases."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select, update

from supportlens.app import create_app
from supportlens.db.base import utcnow
from supportlens.db.engine import make_engine, make_sessionmaker
from supportlens.jobs import runner as jobs
from supportlens.jobs.models import JobLease
from supportlens.metrics import JOB_RUNS
from tests.clarity.support import running_simulator
from tests.support.live import LiveServer


def _two_runners(settings, registry):
    engines = [make_engine(settings), make_engine(settings)]
    runners = [
        jobs.JobRunner(
            None, sessionmaker=make_sessionmaker(e), settings=settings, holder=f"proc-{i}", jobs=registry
        )
        for i, e in enumerate(engines)
    ]
    return engines, runners


async def test_exactly_one_of_two_processes_runs_a_due_job(settings, engine, sessionmaker):
    calls: list[str] = []

    async def work(app):
        calls.append("run")
        await asyncio.sleep(0.2)  # long enough for the other process to try meanwhile

    registry = {"test.work": jobs.Job("test.work", 3600, work)}
    engines, runners = _two_runners(settings, registry)
    try:
        ran = await asyncio.gather(*(r.run_due_once() for r in runners))
        assert sorted(len(x) for x in ran) == [0, 1]
        assert calls == ["run"]
        # not due again: nobody runs it
        assert await asyncio.gather(*(r.run_due_once() for r in runners)) == [[], []]
        async with sessionmaker() as db:
            row = await db.get(JobLease, "test.work")
            winner = "proc-0" if ran[0] else "proc-1"
            assert row.last_holder == winner and row.run_count == 1 and row.last_status == "ok"
            assert row.holder is None and row.expires_at is None
            assert (
                timedelta(minutes=59) < row.next_run_at - row.last_started_at <= timedelta(hours=1, seconds=1)
            )
            # due again (e.g. an hour later): again exactly one runs it
            await jobs.run_now(db, "test.work")
        ran = await asyncio.gather(*(r.run_due_once() for r in runners))
        assert sorted(len(x) for x in ran) == [0, 1] and len(calls) == 2
    finally:
        for e in engines:
            await e.dispose()


async def test_a_dead_holders_lease_expires_and_is_taken_over(settings, engine, sessionmaker):
    calls = []

    async def work(app):
        calls.append(1)

    registry = {"test.lease": jobs.Job("test.lease", 60, work, lease_seconds=30)}
    engines, runners = _two_runners(settings, registry)
    try:
        async with sessionmaker() as db:
            await jobs.ensure_job_row(db, "test.lease", 60)
            await db.execute(
                update(JobLease).values(holder="crashed", expires_at=utcnow() + timedelta(seconds=30))
            )
            await db.commit()
        assert await runners[0].run_due_once() == []  # leased by a live holder
        async with sessionmaker() as db:
            await db.execute(update(JobLease).values(expires_at=utcnow() - timedelta(seconds=1)))
            await db.commit()
        assert await runners[0].run_due_once() == ["test.lease"]
        assert calls == [1]
    finally:
        for e in engines:
            await e.dispose()


async def test_errors_are_recorded_and_counted(settings, engine, sessionmaker):
    async def broken(app):
        raise RuntimeError("upstream said no")

    before = JOB_RUNS.labels("test.broken", "error")._value.get()
    runner = jobs.JobRunner(
        None,
        sessionmaker=sessionmaker,
        settings=settings,
        jobs={
            "test.broken": jobs.Job("test.broken", 300, broken),
            "test.off": jobs.Job("test.off", lambda s: None, broken),
        },
    )
    assert await runner.run_due_once() == ["test.broken"]
    assert JOB_RUNS.labels("test.broken", "error")._value.get() == before + 1
    async with sessionmaker() as db:
        [status] = await jobs.job_statuses(db, "test.")
        assert status.name == "test.broken" and status.last_status == "error"
        assert status.last_error == "RuntimeError: upstream said no"
        assert status.next_run_at > utcnow() + timedelta(seconds=290)
        assert await db.get(JobLease, "test.off") is None  # a job whose interval is None is off


def test_register_job_accepts_a_settings_dependent_interval():
    async def fn(app):
        return None

    job = jobs.register_job("test.registered", lambda s: 60 if s.run_jobs else None, fn)
    try:
        assert jobs.JOBS["test.registered"] is job
        assert job.interval_for(type("S", (), {"run_jobs": True})()) == 60.0  # type: ignore[arg-type]
        assert job.interval_for(type("S", (), {"run_jobs": False})()) is None  # type: ignore[arg-type]
    finally:
        jobs.JOBS.pop("test.registered", None)


async def test_two_app_processes_run_each_scheduled_clarity_pull_once(settings_factory, engine, sessionmaker):
    """Two app servers with the job runner on, one database: each scheduled pull is sent once."""
    with running_simulator() as sim:
        settings = settings_factory(**sim.settings(run_jobs=True, jobs_tick_seconds=0.2))
        servers = [LiveServer(create_app(settings)).start(), LiveServer(create_app(settings)).start()]
        try:
            deadline = time.monotonic() + 15
            names = {"clarity.pull.url_device", "clarity.pull.traffic"}
            while time.monotonic() < deadline:
                async with sessionmaker() as db:
                    rows = (await db.scalars(select(JobLease).where(JobLease.name.in_(names)))).all()
                if len(rows) == 2 and all(r.run_count >= 1 for r in rows):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # several more ticks of both processes
        finally:
            for s in servers:
                s.stop()
        assert sim.state.export_requests == 2
        assert {r.name: r.run_count for r in rows} == dict.fromkeys(names, 1)
        assert all(r.last_status == "ok" for r in rows)
