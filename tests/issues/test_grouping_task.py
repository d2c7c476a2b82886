"""The grouping job: ingest marks new errors and clicks pending with a job in the batch's transaction;
the job groups them incrementally, exactly once, and a crashed job leaves nothing half-done."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text

from supportlens.capture import sites
from supportlens.issues import service
from supportlens.issues.models import Issue, IssueOccurrence, IssuePendingEvent
from supportlens.tasks import grouping
from supportlens.tasks.queue import Runtime, run_until_empty
from tests.support.ingest import ORIGIN, PROJECT, ago, batch, event, headers

URL = "/api/ingest/v1/events"
AMOUNT = "TypeError: Cannot read properties of undefined (reading 'amount')"


@pytest.fixture
async def site_key(db: Any) -> str:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


def errors(n: int, message: str = AMOUNT, **kw: Any) -> list[dict[str, Any]]:
    return [event("error", at=ago(minutes=10 - i / 10), data={"message": message}, **kw) for i in range(n)]


async def count(db: Any, model: Any) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)))


async def grouping_jobs(db: Any) -> list[Any]:
    rows = await db.execute(
        text("SELECT status, queueing_lock FROM procrastinate_jobs WHERE task_name = :t"),
        {"t": grouping.GROUPING_TASK},
    )
    return list(rows)


async def test_ingest_marks_new_issue_events_pending_with_one_coalesced_job(client, db, site_key):
    body = batch(site_key, [*errors(3), event("click"), event("rage_click", selector="#pay")])
    assert (await client.post(URL, json=body, headers=headers())).status_code == 202
    assert await count(db, IssuePendingEvent) == 4  # the plain click is not an issue type
    # A retry of the same batch marks nothing twice; a second batch of the session rides on the job.
    assert (await client.post(URL, json=body, headers=headers())).status_code == 202
    again = batch(site_key, errors(2))
    assert (await client.post(URL, json=again, headers=headers())).status_code == 202
    assert await count(db, IssuePendingEvent) == 6
    jobs = await grouping_jobs(db)
    assert len(jobs) == 1 and jobs[0].status == "todo"
    # Due one window after the batch that made it, so the batches of that window share it.
    due_in = await db.scalar(
        text("SELECT extract(epoch FROM scheduled_at - now()) FROM procrastinate_jobs WHERE task_name = :t"),
        {"t": grouping.GROUPING_TASK},
    )
    assert 0 < due_in <= grouping.GROUPING_WINDOW_SECONDS
    # A batch without errors or clicks adds no job and no row.
    quiet = batch(site_key, [event("click")], session_id="s2quiet")
    assert (await client.post(URL, json=quiet, headers=headers())).status_code == 202
    assert len(await grouping_jobs(db)) == 1


async def window_passed(db: Any) -> None:
    await db.execute(text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = :t"),
                     {"t": grouping.GROUPING_TASK})  # fmt: skip
    await db.commit()


async def test_the_worker_groups_pending_events_incrementally_and_exactly_once(
    client, db, site_key, settings, engine, sessionmaker
):
    runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
    await client.post(URL, json=batch(site_key, errors(5)), headers=headers())
    await run_until_empty(runtime, queues=(grouping.GROUPING_QUEUE,))
    assert await count(db, Issue) == 0  # not before the window has passed
    await window_passed(db)
    await run_until_empty(runtime, queues=(grouping.GROUPING_QUEUE,))
    [issue] = (await db.scalars(select(Issue))).all()
    assert (issue.event_count, issue.session_count) == (5, 1)
    assert await count(db, IssuePendingEvent) == 0
    assert await grouping_jobs(db) == []  # done and deleted

    # Only the new events are taken the next time; the grouped ones are not read again.
    await client.post(URL, json=batch(site_key, errors(2), session_id="s2other"), headers=headers())
    assert await grouping.group_pending(sessionmaker) == 2
    assert await grouping.group_pending(sessionmaker) == 0
    await db.refresh(issue)
    assert (issue.event_count, issue.session_count) == (7, 2)
    assert await count(db, IssueOccurrence) == 7


async def test_concurrent_jobs_take_each_event_once(client, db, site_key, sessionmaker):
    for i in range(4):
        body = batch(site_key, errors(30), session_id=f"s{i}conc")
        assert (await client.post(URL, json=body, headers=headers())).status_code == 202
    taken = await asyncio.gather(*(grouping.group_pending(sessionmaker, batch=7) for _ in range(3)))
    assert sum(taken) == 120
    [issue] = (await db.scalars(select(Issue))).all()
    assert issue.event_count == 120 and issue.session_count == 4
    assert await count(db, IssuePendingEvent) == 0


async def test_a_crashed_job_leaves_its_events_pending_and_the_retry_counts_them_once(
    client, db, site_key, sessionmaker, monkeypatch
):
    await client.post(URL, json=batch(site_key, errors(4)), headers=headers())
    real = service.group_events

    async def crash_after_grouping(session: Any, events: Any) -> Any:
        await real(session, events)  # the grouping is written ... and the worker dies before commit
        raise RuntimeError("worker killed")

    monkeypatch.setattr(service, "group_events", crash_after_grouping)
    with pytest.raises(RuntimeError):
        await grouping.group_pending(sessionmaker)
    assert await count(db, Issue) == 0
    assert await count(db, IssuePendingEvent) == 4

    monkeypatch.setattr(service, "group_events", real)
    assert await grouping.group_pending(sessionmaker) == 4
    [issue] = (await db.scalars(select(Issue))).all()
    assert issue.event_count == 4


async def test_erasing_a_session_removes_its_pending_events(client, db, site_key):
    await client.post(URL, json=batch(site_key, errors(2)), headers=headers())
    await db.execute(text("DELETE FROM user_sessions"))
    await db.commit()
    assert await count(db, IssuePendingEvent) == 0


async def test_the_periodic_sweep_groups_what_a_failed_job_left(
    client, db, site_key, settings, engine, sessionmaker
):
    from supportlens.tasks import schedule
    from tests.support.queue import run_periodic_now

    await client.post(URL, json=batch(site_key, errors(3)), headers=headers())
    await db.execute(text("DELETE FROM procrastinate_jobs"))  # as if the job had given up
    await db.commit()
    runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
    await run_periodic_now(runtime, [schedule.GROUPING_SWEEP_TASK])
    [issue] = (await db.scalars(select(Issue))).all()
    assert issue.event_count == 3 and await count(db, IssuePendingEvent) == 0


async def _uncommitted_errors(db: Any, key: str, session_id: str) -> None:
    from supportlens.capture.ingest import ingest_batch
    from supportlens.capture.schemas import IngestBatch

    site = await sites.make_cache(0).by_key(db, key)
    body = IngestBatch.model_validate_json(json.dumps(batch(key, errors(2), session_id=session_id)))
    await ingest_batch(db, site, body, client_ip="81.2.3.4", user_agent=None, commit=False)


async def test_batches_with_errors_do_not_wait_for_each_other_on_the_waiting_job(
    client, db, site_key, sessionmaker
):
    await client.post(URL, json=batch(site_key, errors(1), session_id="s0first"), headers=headers())
    async with sessionmaker() as first, sessionmaker() as second:
        await _uncommitted_errors(first, site_key, "s1open")
        # The job waits and another batch is still open: this one neither waits for it nor adds a job.
        await asyncio.wait_for(_uncommitted_errors(second, site_key, "s2open"), timeout=5)
        await second.commit()
        await first.commit()
    assert await count(db, IssuePendingEvent) == 5
    assert len(await grouping_jobs(db)) == 1


async def test_a_batch_committed_after_the_worker_took_the_job_is_grouped_by_the_next_job_or_the_sweep(
    client, db, site_key, settings, engine, sessionmaker
):
    from supportlens.tasks import schedule
    from tests.support.queue import run_periodic_now

    runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
    await client.post(URL, json=batch(site_key, errors(1), session_id="s0first"), headers=headers())
    await window_passed(db)
    async with sessionmaker() as late:
        await _uncommitted_errors(late, site_key, "s1late")  # found the job waiting: no job of its own
        await run_until_empty(runtime, queues=(grouping.GROUPING_QUEUE,))  # the worker runs it now
        await late.commit()
    assert await count(db, IssuePendingEvent) == 2 and await grouping_jobs(db) == []
    # The worker's periodic deferrer may have queued this minute's sweep already: run one now instead.
    await db.execute(text("DELETE FROM procrastinate_jobs WHERE queue_name = 'periodic'"))
    await db.commit()
    await run_periodic_now(runtime, [schedule.GROUPING_SWEEP_TASK])
    [issue] = (await db.scalars(select(Issue))).all()
    assert issue.event_count == 3 and await count(db, IssuePendingEvent) == 0


async def test_grouping_steps_aside_while_a_mapping_job_runs_in_its_process(
    client, db, site_key, sessionmaker, monkeypatch
):
    from supportlens.tasks import mapping

    await client.post(URL, json=batch(site_key, errors(3)), headers=headers())
    monkeypatch.setattr(grouping, "GROUPING_YIELD_SECONDS", 30.0)
    async with mapping.in_flight():
        job = asyncio.create_task(grouping.group_pending(sessionmaker))
        await asyncio.sleep(0.3)
        assert not job.done() and await count(db, Issue) == 0  # waiting for the mapping job
    assert await asyncio.wait_for(job, timeout=10) == 3


async def test_grouping_progresses_when_mapping_never_pauses(client, db, site_key, sessionmaker, monkeypatch):
    from supportlens.tasks import mapping

    await client.post(URL, json=batch(site_key, errors(3)), headers=headers())
    monkeypatch.setattr(grouping, "GROUPING_YIELD_SECONDS", 0.2)
    async with mapping.in_flight():
        assert await asyncio.wait_for(grouping.group_pending(sessionmaker), timeout=10) == 3


async def test_one_grouping_job_runs_at_a_time_the_next_waits_in_the_queue(client, db, site_key):
    await client.post(URL, json=batch(site_key, errors(1)), headers=headers())
    await db.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE task_name = :t"),
                     {"t": grouping.GROUPING_TASK})  # fmt: skip
    await db.commit()  # a worker is draining a backlog
    await client.post(URL, json=batch(site_key, errors(1), session_id="s2next"), headers=headers())
    await window_passed(db)
    rows = await db.execute(
        text("SELECT status, lock FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"),
        {"t": grouping.GROUPING_TASK},
    )
    assert [tuple(r) for r in rows] == [("doing", grouping.GROUPING_LOCK), ("todo", grouping.GROUPING_LOCK)]
    # procrastinate's fetch does not hand out a job while another of its lock is doing.
    fetched = await db.scalar(text("SELECT id FROM procrastinate_fetch_job_v2(ARRAY['issues'], NULL)"))
    assert fetched is None
