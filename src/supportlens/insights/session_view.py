"""Clarity's own view of one session, for the session page: its duration and smart events beside ours.

The recordings list (optional enrichment, SUPPORTLENS_CLARITY_RECORDINGS_ENABLED) stores Clarity's
figures on the session (`user_sessions.clarity_data`); the project's connection row says whether the
last pull of that list worked. `session_figures` is pure: the session's stored figures, our own
counts and the connection's state in, what the panel shows out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.insights.models import ClarityConnection

# Clarity's smart events (integrations/clarity/models.py names them) and our count of the same thing.
SMART_EVENTS = (
    ("rageClicks", "Rage clicks", "rage_clicks"),
    ("deadClicks", "Dead clicks", "dead_clicks"),
    ("scriptErrors", "Script errors", "error_count"),
    ("errorClicks", "Error clicks", None),
    ("quickbacks", "Quick backs", None),
    ("excessiveScrolls", "Excessive scrolling", None),
)
FAILURE_WORDS = {
    "unauthorized": "Clarity refused the API token",
    "forbidden": "the API token is for another Clarity project",
    "quota_exhausted": "Clarity's daily call limit is used up",
    "budget_exhausted": "today's calls to Clarity are used up",
    "bad_request": "Clarity did not accept the request",
}


@dataclass
class SmartEvent:
    key: str
    label: str
    clarity: int
    ours: int | None


@dataclass
class ClarityFigures:
    state: str  # enriched | waiting (enrichment on, nothing for this session yet) | off
    failure: str | None = None  # plain words when the last pull of the recordings list failed
    failed_at: datetime | None = None
    duration_s: int | None = None
    active_s: int | None = None
    pages: int | None = None
    clicks: int | None = None
    enriched_at: datetime | None = None
    smart: list[SmartEvent] = field(default_factory=list)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def session_figures(
    clarity_data: dict[str, Any] | None,
    ours: dict[str, int],
    *,
    enabled: bool,
    connection: ClarityConnection | None,
) -> ClarityFigures:
    """What the session page's Clarity panel shows (see the module docstring)."""
    if not enabled:
        return ClarityFigures("off")
    data = clarity_data if isinstance(clarity_data, dict) else {}
    failure = failed_at = None
    if connection is not None and connection.recordings_status not in (None, "ok"):
        reason = FAILURE_WORDS.get(connection.recordings_status or "", "Clarity did not answer")
        failure = f"The last read of Clarity's recordings list failed: {reason}."
        failed_at = connection.recordings_last_pull_at
    if data.get("source") != "clarity_recordings":
        return ClarityFigures("waiting", failure, failed_at)
    raw = data.get("smartEvents")
    smart_raw: dict[str, Any] = raw if isinstance(raw, dict) else {}
    smart = []
    for key, label, our_key in SMART_EVENTS:
        n = _int(smart_raw.get(key)) or 0
        mine = ours.get(our_key) if our_key else None
        if n or mine:
            smart.append(SmartEvent(key, label, n, mine))
    enriched = None
    if isinstance(data.get("enrichedAt"), str):
        try:
            enriched = datetime.fromisoformat(data["enrichedAt"])
        except ValueError:
            enriched = None
    return ClarityFigures(
        "enriched",
        failure,
        failed_at,
        duration_s=_int(data.get("totalDurationSeconds")),
        active_s=_int(data.get("activeDurationSeconds")),
        pages=_int(data.get("pagesCount")),
        clicks=_int(data.get("clickCount")),
        enriched_at=enriched,
        smart=smart,
    )


async def connection_of(db: AsyncSession, project_id: str | None) -> ClarityConnection | None:
    """The project's connection row as it is (None when never pulled); never creates one."""
    if not project_id:
        return None
    return await db.get(ClarityConnection, project_id)
