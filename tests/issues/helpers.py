"""Group stored events as the grouping job does (tests that seed session_events directly)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from supportlens.tasks import grouping


async def group_everything(sessionmaker: Any) -> int:
    """Mark every stored error and click pending, as ingest does, and run the grouping job's work."""
    async with sessionmaker() as db:
        await db.execute(
            text(
                'INSERT INTO issue_pending_events SELECT id, session_id, "timestamp" FROM session_events '
                "WHERE event_type IN ('error', 'rage_click', 'dead_click') ON CONFLICT DO NOTHING"
            )
        )
        await db.commit()
    return await grouping.group_pending(sessionmaker)
