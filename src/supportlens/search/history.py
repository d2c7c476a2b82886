"""Per-agent search history: the last searches, newest first, one row per distinct query."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.db.base import utcnow
from supportlens.search.models import SearchHistory
from supportlens.search.query import SearchQuery

SHOWN = 20


async def record(
    db: AsyncSession,
    agent_id: uuid.UUID,
    query: SearchQuery,
    counts: dict[str, Any] | None = None,
    *,
    commit: bool = True,
) -> None:
    """Add a search; the same query searched again moves to the top instead of repeating.

    Only what is shown survives: the agent's other entries beyond the newest SHOWN - 1 are removed.
    On PostgreSQL it is one statement (the upsert with the trim as a data-modifying CTE), so a
    search costs one round trip. The trim skips rows another search of the same agent is removing
    at that moment instead of waiting for them: two at once never deadlock, and the next search
    finishes the trim.
    """
    table = cast(Table, SearchHistory.__table__)
    normalized = query.normalized[:256]
    values = {
        "id": uuid.uuid4(),
        "agent_id": agent_id,
        "query": query.text[:256],
        "normalized_query": normalized,
        "kind": query.kind,
        "result_counts": counts or {},
        "created_at": utcnow(),
    }
    beyond_shown = (
        select(table.c.id)
        .where(table.c.agent_id == agent_id, table.c.normalized_query != normalized)
        .order_by(table.c.created_at.desc())
        .offset(SHOWN - 1)
    )
    postgres = db.get_bind().dialect.name == "postgresql"
    inserted = (pg_insert if postgres else sqlite_insert)(table).values(values)
    upsert = inserted.on_conflict_do_update(
        index_elements=[table.c.agent_id, table.c.normalized_query],
        set_={name: inserted.excluded[name] for name in ("query", "kind", "result_counts", "created_at")},
    )
    if postgres:
        trim = delete(table).where(table.c.id.in_(beyond_shown.with_for_update(skip_locked=True)))
        await db.execute(upsert.add_cte(trim.cte("trimmed")))
    else:  # SQLite runs one writer at a time
        await db.execute(upsert)
        await db.execute(delete(table).where(table.c.id.in_(beyond_shown)))
    if commit:
        await db.commit()


async def update_counts(
    db: AsyncSession, agent_id: uuid.UUID, query: SearchQuery, counts: dict[str, Any]
) -> None:
    """Merge result counts into the entry of this query, if it is still there."""
    where = (SearchHistory.agent_id == agent_id, SearchHistory.normalized_query == query.normalized[:256])
    current = (await db.execute(select(SearchHistory.id, SearchHistory.result_counts).where(*where))).first()
    if current is None:
        return
    merged = {**(current.result_counts or {}), **counts}
    await db.execute(update(SearchHistory).where(SearchHistory.id == current.id).values(result_counts=merged))
    await db.commit()


async def recent(db: AsyncSession, agent_id: uuid.UUID, limit: int = SHOWN) -> list[SearchHistory]:
    rows = await db.execute(
        select(SearchHistory)
        .where(SearchHistory.agent_id == agent_id)
        .order_by(SearchHistory.created_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def clear(db: AsyncSession, agent_id: uuid.UUID) -> int:
    count = (
        await db.execute(
            select(func.count()).select_from(SearchHistory).where(SearchHistory.agent_id == agent_id)
        )
    ).scalar_one()
    await db.execute(delete(SearchHistory).where(SearchHistory.agent_id == agent_id))
    await db.commit()
    return int(count)


def as_json(row: SearchHistory) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "query": row.query,
        "kind": row.kind,
        "resultCounts": row.result_counts or {},
        "createdAt": row.created_at.isoformat(),
    }
