"""Mapping jobs: enqueued by ingest in the batch's own transaction, run by the mapping worker.

How the work is serialised: a mapping job holds one mutex for its transaction (engine.mapping_mutex, a
PostgreSQL advisory lock), so jobs run one at a time whichever worker takes them, granted in the order
they asked. One job at a time is what lets the engine re-score a batch's whole neighbourhood (its
browser, its network and the browsers behind it) from the stored facts without any lock of its own; an
agent's manual decision, the other writer of links, takes the same mutex. (procrastinate's own job lock
was measured first: its fetch checks every waiting job of the lock, 130 ms per fetch with 15,700 jobs
waiting, so a backlog drained in quadratic time.)

How a burst is coalesced: a job's queueing lock is its session plus what the batch adds to it (who
signed in, from which address), so while a job for that waits in the queue, the next batches of the
session ride on it (``ON CONFLICT ... DO UPDATE`` on the queue's unique index of waiting jobs) and one
re-score maps them all. The conflicting row is locked until the batch commits, so the worker cannot
take the job before the batch it now stands for is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from supportlens.mapping.facts import FactKeys

MAPPING_QUEUE = "mapping"
MAPPING_TASK = "supportlens.map_session"

# procrastinate_defer_jobs_v1 is this same INSERT without the ON CONFLICT clause; the queue's triggers
# (the "deferred" event, the NOTIFY that wakes a worker) fire on the insert itself.
_ENQUEUE = text(
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "VALUES (:queue, :task, 0, NULL, :queueing_lock, CAST(:args AS jsonb)) "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' "
    "DO UPDATE SET priority = procrastinate_jobs.priority"
)


def _said(email: str | None, client_ip: str | None) -> str:
    # Hashed: the lock is visible in the queue's admin and logs.
    return hashlib.blake2b(f"{email or ''}|{client_ip or ''}".encode(), digest_size=8).hexdigest()


def queueing_lock(session_id: uuid.UUID, email: str | None, client_ip: str | None) -> str:
    """Batches of one session with the same sign-in and address are mapped by one job."""
    return f"map:{session_id}:{_said(email, client_ip)}"


# The same job as part of ingest's one statement (a CTE), for the session `s` the statement upserted:
# one round trip less per batch. Its lock and arguments are queueing_lock's and enqueue_mapping's.
ENQUEUE_FROM_STORE = (
    "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args) "
    "SELECT :mapping_queue, :mapping_task, 0, NULL, 'map:' || s.id || ':' || :mapping_said, "
    "jsonb_build_object('session_id', CAST(s.id AS text), 'email', CAST(:mapping_email AS text), "
    "'client_ip', CAST(:mapping_ip AS text), 'acked_at', CAST(:mapping_acked_at AS text)) FROM s "
    "ON CONFLICT (queueing_lock) WHERE status = 'todo' "
    "DO UPDATE SET priority = procrastinate_jobs.priority RETURNING 1"
)


def enqueue_params(*, email: str | None, client_ip: str | None, acked_at: datetime) -> dict[str, Any]:
    """The parameters of ENQUEUE_FROM_STORE."""
    return {
        "mapping_queue": MAPPING_QUEUE,
        "mapping_task": MAPPING_TASK,
        "mapping_said": _said(email, client_ip),
        "mapping_email": email,
        "mapping_ip": client_ip,
        "mapping_acked_at": acked_at.astimezone(UTC).isoformat(),
    }


async def enqueue_mapping(
    db: AsyncSession,
    *,
    session_id: uuid.UUID,
    email: str | None,
    client_ip: str | None,
    acked_at: datetime,
) -> None:
    """Enqueue the mapping of a stored batch in the caller's transaction (one statement, no commit)."""
    args = {
        "session_id": str(session_id),
        "email": email,
        "client_ip": client_ip,
        "acked_at": acked_at.astimezone(UTC).isoformat(),
    }
    await db.execute(
        _ENQUEUE,
        {
            "queue": MAPPING_QUEUE,
            "task": MAPPING_TASK,
            "queueing_lock": queueing_lock(session_id, email, client_ip),
            "args": json.dumps(args),
        },
    )


# Mapping jobs running in this process (waiting for the mutex included). Other jobs of the same worker
# (issue grouping) step aside while there are some: they share one event loop, and the mapping lag is
# what a person waits for.
_in_flight = 0


@contextlib.asynccontextmanager
async def in_flight() -> AsyncIterator[None]:
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1


async def yield_to_mapping(max_wait: float, poll: float = 0.02) -> None:
    """Wait until no mapping job runs in this process, or `max_wait` seconds (so the caller progresses)."""
    deadline = time.monotonic() + max_wait
    # Polled: an asyncio.Event would bind to the first event loop that waits on it.
    while _in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(poll)


async def map_session(
    sessionmaker: Any, *, session_id: str, email: str | None, client_ip: str | None, keys: FactKeys
) -> bool:
    """Run the mapping engine for one stored batch (or a coalesced run of them) and commit.

    False when the session is gone (erased or purged since): nothing to map."""
    from supportlens.mapping import engine
    from supportlens.sessions.models import UserSession

    async with sessionmaker() as db:
        await engine.mapping_mutex(db)
        session = await db.get(UserSession, uuid.UUID(session_id))
        if session is None:
            return False
        identified = engine.CustomerRef(email=email) if email else None
        await engine.on_ingest(db, session=session, identified=identified, client_ip=client_ip, keys=keys)
        await db.commit()
    return True
