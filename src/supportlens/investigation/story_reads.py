"""The story's read of a session's events: one narrow query through the driver (the story itself,
pure, is `story.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.investigation.story import StoryEvent
from supportlens.sessions.models import UserSession

MAX_STORY_EVENTS = 20_000  # a story beyond this says how many events it left untold
# The columns of story.StoryEvent, in its order: the offset in ms computed by PostgreSQL (no datetime
# per row), an error's message chosen here, and each JSON field read only for the event types whose
# step uses it.
STORY_SQL = """
SELECT GREATEST(0, (EXTRACT(EPOCH FROM ("timestamp" - $1::timestamptz)) * 1000)::bigint),
  event_type, left(page_url, 2048),
  CASE WHEN event_type IN ('click', 'rage_click', 'dead_click', 'form_submit')
       THEN left(element_selector, 300) END,
  CASE WHEN event_type IN ('click', 'rage_click', 'dead_click') THEN left(event_data->>'text', 300) END,
  CASE WHEN event_type = 'error'
       THEN left(COALESCE(NULLIF(event_data->>'message', ''), NULLIF(event_data->>'msg', ''),
                          NULLIF(event_data->>'error', ''), NULLIF(event_data->>'text', ''),
                          'JavaScript error'), 300) END,
  CASE WHEN event_type = 'navigation' THEN left(event_data->>'title', 300) END,
  CASE WHEN event_type = 'custom'
       THEN left(COALESCE(event_data->>'name', event_data->>'event', event_data->>'key'), 200) END,
  CASE WHEN event_type = 'scroll'
       THEN left(COALESCE(event_data->>'depth', event_data->>'maxDepth', event_data->>'percent',
                          event_data->>'scrollDepth'), 20) END
FROM session_events WHERE session_id = $2
ORDER BY "timestamp", id
LIMIT $3
"""


def _depth(raw: str | None) -> int | None:
    try:
        return max(0, min(100, int(float(raw)))) if raw is not None else None
    except (ValueError, OverflowError):  # "nan", "inf": a tracker's text, not a depth
        return None


async def story_events(db: AsyncSession, session: UserSession, limit: int = MAX_STORY_EVENTS) -> list[Any]:
    """The session's events as the story reads them, in time order, at most `limit`.

    Read on the request's own connection and transaction, through the driver: 5,000 rows go
    straight from asyncpg's records into `StoryEvent` tuples, without a result row object and a
    Python loop body each, which made the read about a third slower (bench/README.md, "session
    view")."""
    conn = await db.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    rows = await driver.fetch(STORY_SQL, session.session_start, session.id, limit)  # type: ignore[union-attr]
    make = StoryEvent._make
    return [make(r) if r[8] is None else make((*r[:8], _depth(r[8]))) for r in rows]
