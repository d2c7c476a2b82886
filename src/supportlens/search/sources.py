"""The search page's three sources at once: the customer directory's HubSpot and Dwolla records, and the
local sessions from the sessions read model, each under the directory's deadline.

The local sessions are read here rather than in the directory: the directory is about customers at the
vendors and is read by the sessions package itself, so it cannot reach back into it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from supportlens.customers.directory import CustomerDirectory, SourceResult
from supportlens.customers.query import SearchQuery
from supportlens.db.engine import autocommit
from supportlens.sessions.service import finds_sessions, search_sessions

log = structlog.get_logger(__name__)

SOURCES = ("hubspot", "dwolla", "sessions")
SESSIONS_LIMIT = 10


async def local_sessions(directory: CustomerDirectory, query: SearchQuery) -> SourceResult:
    """The sessions the search page lists for the query, within the directory's deadline."""
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    async def run() -> list[dict[str, Any]]:
        async with directory.sessionmaker() as db:
            await autocommit(db)  # read only: no BEGIN/ROLLBACK round trips
            found = await search_sessions(db, query, directory.settings, limit=SESSIONS_LIMIT)
        return [s.model_dump(mode="json", by_alias=True) for s in found]

    if not finds_sessions(query):  # a phone search: no connection checked out for an empty answer
        return SourceResult("ok", [], took_ms=took())
    try:
        items = await asyncio.wait_for(run(), directory.deadline)
    except TimeoutError:
        return SourceResult("timeout", error=f"no answer within {directory.deadline:g} s", took_ms=took())
    except Exception as exc:
        log.exception("search.sessions_failed")
        return SourceResult("error", error=f"sessions search failed ({type(exc).__name__})", took_ms=took())
    return SourceResult("ok", items, took_ms=took())


async def search_all(
    directory: CustomerDirectory, query: SearchQuery, *, refresh: bool = False
) -> dict[str, SourceResult]:
    """All three sources at once; returns when each has answered or hit its deadline."""
    hubspot, dwolla, sessions = await asyncio.gather(
        directory.source("hubspot", query, refresh=refresh),
        directory.source("dwolla", query, refresh=refresh),
        local_sessions(directory, query),
    )
    return {"hubspot": hubspot, "dwolla": dwolla, "sessions": sessions}
