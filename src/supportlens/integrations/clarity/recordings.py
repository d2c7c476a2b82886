"""Client of Clarity's recordings list (undocumented; the endpoint Microsoft's own MCP server uses).

POST {base}/mcp/recordings/sample with the project's bearer token and a body such as
``{"sortBy": 0, "start": ISO, "end": ISO, "count": 100, "filters": {"date": {"start": ISO, "end": ISO}}}``.
It is optional enrichment behind SUPPORTLENS_CLARITY_RECORDINGS_ENABLED: it may change or vanish,
so every unknown shape is logged and skipped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx2

from supportlens.config import Settings
from supportlens.integrations.clarity.export_api import ClarityHTTP
from supportlens.integrations.clarity.models import RecordingItem, parse_recording

log = logging.getLogger(__name__)
RECORDINGS_PATH = "/mcp/recordings/sample"
MAX_COUNT = 250
VENDOR = "clarity_recordings"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sample_body(start: datetime, end: datetime, count: int = 100, sort_by: int = 0) -> dict[str, Any]:
    count = max(1, min(count, MAX_COUNT))
    window = {"start": _iso(start), "end": _iso(end)}
    return {
        "sortBy": sort_by,
        "start": window["start"],
        "end": window["end"],
        "count": count,
        "filters": {"date": window},
    }


def extract_items(payload: Any) -> list[Any]:
    """The list of recordings from the answer: a bare list, or a list under a known key."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("recordings", "items", "sessions", "data", "value", "results"):
            value = payload.get(key)
            if isinstance(value, list):
                return value
    log.warning("clarity recordings: unexpected answer of type %s, ignored", type(payload).__name__)
    return []


class ClarityRecordingsClient:
    def __init__(
        self,
        settings: Settings,
        timeout: float = 20.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = settings.clarity_recordings_base_url.rstrip("/")
        self.token = settings.clarity_api_token.get_secret_value()
        self._http = ClarityHTTP(
            self.base_url, self.token, read_timeout=timeout, vendor=VENDOR, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def sample(
        self, start: datetime, end: datetime, count: int = 100, sort_by: int = 0
    ) -> tuple[list[RecordingItem], int]:
        """Recordings started in [start, end]: (parsed items, number of items skipped as unreadable)."""
        body = sample_body(start, end, count, sort_by)
        payload = await self._http.call("POST", RECORDINGS_PATH, json_body=body)
        items: list[RecordingItem] = []
        skipped = 0
        for raw in extract_items(payload):
            try:
                parsed = parse_recording(raw)
            except Exception:  # an unknown shape must never stop the others
                log.warning("clarity recordings: an item could not be read, skipped", exc_info=True)
                parsed = None
            if parsed is None:
                skipped += 1
            else:
                items.append(parsed)
        return items, skipped
