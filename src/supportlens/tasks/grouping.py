"""Grouping jobs: ingest marks its new errors and clicks pending and enqueues a job; the job groups them.

Exactly once, crash-safe. Ingest writes one `issue_pending_events` row per new error, rage click or
dead click in the batch's own transaction, with the job. A job takes up to GROUPING_BATCH pending rows
(`FOR UPDATE SKIP LOCKED`, so two workers never take the same row), groups their events
(`issues.service.group_events`) and deletes the rows, in one transaction: a crash rolls all of it back
and leaves the rows for the retry. `group_events` is itself idempotent by event id, so even a row
grouped twice would count once. Cost is in proportion to the pending rows: nothing is rescanned.

Coalescing, as mapping jobs do: while a job of a shard waits in the queue, the next batches of that
shard ride on it (`ON CONFLICT ... DO UPDATE` on the queue's unique index of waiting jobs). The shard
(the session's id modulo GROUPING_SHARDS) keeps concurrent batches from queueing behind one job row's
lock; any job takes any pending rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.issues.service import ISSUE_EVENT_TYPES

GROUPING_QUEUE = "issues"
GROUPING_TASK = "supportlens.group_issues"
GROUPING_SHARDS = 4
GROUPING_BATCH = 2000  # events per transaction: a burst is grouped in bounded steps
GROUPED_TYPES = frozenset(ISSUE_EVENT_TYPES)

_PENDING = text(
    "INSERT INTO issue_pending_events (event_id, session_id, occurred_at) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:sessions AS uuid[]), CAST(:times AS timestamptz[])) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_ENQUEUE = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "VALUES (:queue, :task, 0, NULL, :queueing_lock, CAST(:args AS jsonb)) "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' "
    "DO UPDATE SET priority = procrastinate_jobs.priority"
)
# No ORDER BY: sorting a backlog for every step would make draining it quadratic; any order groups the same.
_TAKE = text("SELECT event_id, occurred_at FROM issue_pending_events LIMIT :n FOR UPDATE SKIP LOCKED")
_DONE = text("DELETE FROM issue_pending_events WHERE event_id = ANY(:ids)")


def queueing_lock(session_id: uuid.UUID) -> str:
    return f"group:{session_id.int % GROUPING_SHARDS}"


async def enqueue_grouping(
    db: AsyncSession, *, session_id: uuid.UUID, events: Sequence[tuple[uuid.UUID, datetime]]
) -> None:
    """Mark a batch's new issue-type events pending and enqueue their job (caller's transaction)."""
    if not events:
        return
    await db.execute(
        _PENDING,
        {
            "ids": [e for e, _ in events],
            "sessions": [session_id] * len(events),
            "times": [t for _, t in events],
        },
    )
    await db.execute(
        _ENQUEUE,
        {
            "queue": GROUPING_QUEUE,
            "task": GROUPING_TASK,
            "queueing_lock": queueing_lock(session_id),
            "args": json.dumps({}),
        },
    )


async def group_pending(sessionmaker: Any, *, batch: int = GROUPING_BATCH) -> int:
    """Group pending events, `batch` per transaction, until none is left. Returns how many were taken."""
    from supportlens.issues import service

    taken = 0
    while True:
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
