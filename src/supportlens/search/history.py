"""Per-agent search history: the last searches, newest first, one row per distinct query."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

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
) -> SearchHistory:
    """Add a search; the same query searched again moves to the top instead of repeating."""
    if db.get_bind().dialect.name == "postgresql":
        # One agent searching from several tabs (or one API token used by many clients): two trims of
        # the same agent's rows at once deadlock, so one agent's history is written one at a time.
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"search-history:{agent_id}"},
        )
    await db.execute(
        delete(SearchHistory).where(
            SearchHistory.agent_id == agent_id, SearchHistory.normalized_query == query.normalized[:256]
        )
    )
    row = SearchHistory(
        agent_id=agent_id,
        query=query.text[:256],
        normalized_query=query.normalized[:256],
        kind=query.kind,
        result_counts=counts or {},
    )
    db.add(row)
    await db.flush()
    # Keep the table small: only what is shown survives.
    kept = (
        select(SearchHistory.id)
        .where(SearchHistory.agent_id == agent_id)
        .order_by(SearchHistory.created_at.desc())
        .limit(SHOWN)
        .scalar_subquery()
    )
    await db.execute(
        delete(SearchHistory).where(SearchHistory.agent_id == agent_id, SearchHistory.id.not_in(kept))
    )
    if commit:
        await db.commit()
    return row


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
