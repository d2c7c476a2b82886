"""Per-agent search history: the last searches, newest first, one row per distinct query."""

from __future__ import annotations

import functools
import uuid
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.customers.query import SearchQuery
from supportlens.db.base import utcnow
from supportlens.search.models import SearchHistory

SHOWN = 20
RECORD_COLUMNS = ("id", "agent_id", "query", "normalized_query", "kind", "result_counts", "created_at")


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
    It is one statement (the upsert with the trim as a data-modifying CTE), so a
    search costs one round trip. The trim skips rows another search of the same agent is removing
    at that moment instead of waiting for them: two at once never deadlock, and the next search
    finishes the trim.
    """
    params = {
        "id": uuid.uuid4(),
        "agent_id": agent_id,
        "query": query.text[:256],
        "normalized_query": query.normalized[:256],
        "kind": query.kind,
        "result_counts": counts or {},
        "created_at": utcnow(),
    }
    await db.execute(_record_statement(), params)
    if commit:
        await db.commit()


@functools.cache
def _record_statement() -> Executable:
    """`record`'s statement, built once (with bound parameters) rather than on every search."""
    table = cast(Table, SearchHistory.__table__)
    value = {name: bindparam(name, type_=table.c[name].type) for name in RECORD_COLUMNS}
    beyond_shown = (
        select(table.c.id)
        .where(table.c.agent_id == value["agent_id"], table.c.normalized_query != value["normalized_query"])
        .order_by(table.c.created_at.desc())
        .offset(SHOWN - 1)
    )
    inserted = insert(table).values(value)
    upsert = inserted.on_conflict_do_update(
        index_elements=[table.c.agent_id, table.c.normalized_query],
        set_={name: inserted.excluded[name] for name in ("query", "kind", "result_counts", "created_at")},
    )
    trim = delete(table).where(table.c.id.in_(beyond_shown.with_for_update(skip_locked=True)))
    return upsert.add_cte(trim.cte("trimmed"))


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
