"""Grouping jobs: ingest marks its new errors and clicks pending and enqueues a job; the job groups them.

Exactly once, crash-safe. Ingest writes one `issue_pending_events` row per new error, rage click or
dead click in the batch's own statement (supportlens.capture.ingest, the PENDING and ENQUEUE parts
below), with the job. A job takes up to GROUPING_BATCH pending rows (`FOR UPDATE SKIP LOCKED`, so two
workers never take the same row), groups their events (`issues.service.group_events`) and deletes the
rows, in one transaction: a crash rolls all of it back and leaves the rows for the retry.
`group_events` is itself idempotent by event id, so even a row grouped twice would count once. Cost is
in proportion to the pending rows: nothing is rescanned.

At most one job waits: it is due GROUPING_WINDOW_SECONDS after the batch that made it, and every batch
until then finds it (`ON CONFLICT ... DO NOTHING` on the queue's unique index of waiting jobs), so a
busy site makes about one grouping job per window, not one per batch. DO NOTHING takes no lock on the
waiting job (a `DO UPDATE` did, so a batch with an error could wait for the commit of the one before
it). A worker that dies mid-job holds the lock until `retry_stalled_jobs` puts its job back; the sweep
groups meanwhile. The price: a batch whose statement found the job waiting and that commits only after a
worker took it is not seen by that run; the next batch's job, or the periodic sweep
(tasks.schedule, every minute), groups it.

One grouping job runs at a time (the procrastinate lock GROUPING_LOCK; a job takes whatever is pending,
so a second one running beside it would only share the work): while a backlog drains, the jobs made
in the meantime wait in the queue instead of filling the worker's slots, which mapping jobs need.
Grouping steps aside for mapping: a job shares its worker's event loop with mapping jobs, and its
fingerprinting is pure Python, so before each step it waits (up to GROUPING_YIELD_SECONDS) until no
mapping job runs in its process. Under load issues fall behind, not the mapping lag.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from supportlens.issues.service import ISSUE_EVENT_TYPES
from supportlens.tasks.mapping import yield_to_mapping

GROUPING_QUEUE = "issues"
GROUPING_TASK = "supportlens.group_issues"
GROUPING_LOCK = "group"
GROUPING_WINDOW_SECONDS = 1.0
# Events per transaction: a burst is grouped in bounded steps, each of which holds the worker's event loop
# for its fingerprinting (~0.1 ms an event) and its statements.
GROUPING_BATCH = 500
# Before each step, a job waits up to this long for the mapping jobs running in its process to finish
# (tasks.mapping.yield_to_mapping): under load grouping falls behind, not mapping.
GROUPING_YIELD_SECONDS = 2.0
GROUPED_TYPES = frozenset(ISSUE_EVENT_TYPES)

# Parts of ingest's one statement (CTEs): `e` is the batch's new events (id, event_type, "timestamp"),
# `s` its session (id). PENDING marks the events of GROUPED_TYPES (:grouped_types); ENQUEUE makes the
# job only when PENDING marked any.
PENDING = (
    "INSERT INTO issue_pending_events (event_id, session_id, occurred_at) "
    'SELECT e.id, s.id, e."timestamp" FROM e, s WHERE e.event_type = ANY(CAST(:grouped_types AS text[])) '
    "ON CONFLICT (event_id) DO NOTHING RETURNING 1"
)
ENQUEUE = (
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, "
    "scheduled_at) "
    "SELECT :grouping_queue, :grouping_task, 0, :grouping_lock, :grouping_lock, CAST('{}' AS jsonb), "
    "now() + make_interval(secs => :grouping_window) WHERE EXISTS (SELECT 1 FROM p) "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING RETURNING 1"
)


def enqueue_params() -> dict[str, Any]:
    """The parameters of PENDING and ENQUEUE (read at call time: GROUPED_TYPES may be narrowed)."""
    return {
        "grouped_types": sorted(GROUPED_TYPES),
        "grouping_queue": GROUPING_QUEUE,
        "grouping_task": GROUPING_TASK,
        "grouping_lock": GROUPING_LOCK,
        "grouping_window": GROUPING_WINDOW_SECONDS,
    }


# Pending rows in any order: sorting a backlog for every step would make draining it quadratic; any
# order groups the same.
_TAKE = text("SELECT event_id, occurred_at FROM issue_pending_events LIMIT :n FOR UPDATE SKIP LOCKED")
_DONE = text("DELETE FROM issue_pending_events WHERE event_id = ANY(:ids)")


async def group_pending(sessionmaker: Any, *, batch: int = GROUPING_BATCH) -> int:
    """Group pending events, `batch` per transaction, until none is left. Returns how many were taken."""
    from supportlens.issues import service

    taken = 0
    while True:
        await yield_to_mapping(GROUPING_YIELD_SECONDS)
        async with sessionmaker() as db:
            rows = (await db.execute(_TAKE, {"n": batch})).all()
            if not rows:
                return taken
            ids = [r.event_id for r in rows]
            events = await service.load_events(
                db, ids, since=min(r.occurred_at for r in rows), until=max(r.occurred_at for r in rows)
            )
            await service.group_events(db, events)
            await db.execute(_DONE, {"ids": ids})
            await db.commit()
        taken += len(rows)
        if len(rows) < batch:
            return taken
