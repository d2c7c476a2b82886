"""Tolerant parsing of Clarity's JSON.

The Data Export API answers a list of ``{metricName, information: [...]}``. Counts arrive as
strings, metric names are written with or without spaces ("Dead Click Count" / "DeadClickCount"),
and field spellings vary (``distantUserCount`` / ``distinctUserCount``). Everything here accepts
those variants and drops what it cannot read instead of failing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DIMENSIONS = ("Browser", "Device", "Country/Region", "OS", "Source", "Medium", "Campaign", "Channel", "URL")


def norm_key(name: str) -> str:
    """Case-, space- and punctuation-insensitive key: "Dead Click Count" -> "deadclickcount"."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# Canonical metric names by normalised key (plus the spellings seen in docs and answers).
_METRIC_ALIASES: dict[str, str] = {}
for _canonical, _aliases in {
    "Traffic": (),
    "ScrollDepth": (),
    "EngagementTime": (),
    "PopularPages": (),
    "Browser": (),
    "Device": (),
    "OS": ("operatingsystem",),
    "Country/Region": ("country", "region"),
    "PageTitle": (),
    "ReferrerURL": ("referrer", "referrerurl"),
    "DeadClickCount": ("deadclicks", "deadclick"),
    "ExcessiveScroll": ("excessivescrolling", "excessivescrollcount"),
    "RageClickCount": ("rageclicks", "rageclick"),
    "QuickbackClick": ("quickbackclicks", "quickbacks", "quickback", "quickbackclickcount"),
    "ScriptErrorCount": ("scripterrors", "scripterror", "javascripterrors", "jserrors"),
    "ErrorClickCount": ("errorclicks", "errorclick"),
}.items():
    _METRIC_ALIASES[norm_key(_canonical)] = _canonical
    for _alias in _aliases:
        _METRIC_ALIASES[_alias] = _canonical

# Canonical field names by normalised key.
_FIELD_ALIASES: dict[str, str] = {
    "totalsessioncount": "totalSessionCount",
    "totalsessionscount": "totalSessionCount",
    "totalbotsessioncount": "totalBotSessionCount",
    "totalbotsessionscount": "totalBotSessionCount",
    "distinctusercount": "distinctUserCount",
    "distantusercount": "distinctUserCount",
    "distinctuserscount": "distinctUserCount",
    "pagespersessionpercentage": "pagesPerSession",
    "pagespersession": "pagesPerSession",
    "sessionscount": "sessionsCount",
    "sessioncount": "sessionsCount",
    "sessionswithmetricpercentage": "sessionsWithMetricPercentage",
    "sessionwithmetricpercentage": "sessionsWithMetricPercentage",
    "sessionswithoutmetricpercentage": "sessionsWithoutMetricPercentage",
    "sessionwithoutmetricpercentage": "sessionsWithoutMetricPercentage",
    "pagesviews": "pagesViews",
    "pageviews": "pagesViews",
    "pagesview": "pagesViews",
    "subtotal": "subTotal",
    "averagescrolldepth": "averageScrollDepth",
    "totaltime": "totalTime",
    "activetime": "activeTime",
    "visitscount": "visitsCount",
}
_DIMENSION_KEYS = {norm_key(d): d for d in DIMENSIONS} | {
    "country": "Country/Region",
    "url": "URL",
    "pageurl": "URL",
    "devicetype": "Device",
}


def canonical_metric(name: Any) -> str:
    key = norm_key(str(name or ""))
    return _METRIC_ALIASES.get(key, str(name or "").strip())


def canonical_dimension(name: str) -> str | None:
    """The documented spelling of a dimension name, or None when it is not one."""
    return _DIMENSION_KEYS.get(norm_key(name))


def to_number(value: Any) -> float | None:
    """Counts come as strings ("291942", "1,234", "14.5%"); numbers pass; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").rstrip("%").strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


@dataclass
class InsightRow:
    """One row of a metric: its dimension values (e.g. URL, Device) and its numbers by canonical field."""

    dimensions: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # other text fields, kept as they came

    def get(self, name: str) -> float | None:
        return self.values.get(name)


@dataclass
class InsightMetric:
    name: str  # canonical, e.g. "RageClickCount"
    raw_name: str
    rows: list[InsightRow] = field(default_factory=list)


def _parse_row(item: Any) -> InsightRow | None:
    if not isinstance(item, dict):
        return None
    row = InsightRow()
    for key, value in item.items():
        if not isinstance(key, str):
            continue
        nkey = norm_key(key)
        dim = _DIMENSION_KEYS.get(nkey)
        if dim is not None and isinstance(value, str | int | float) and not isinstance(value, bool):
            row.dimensions[dim] = str(value)
            continue
        canonical = _FIELD_ALIASES.get(nkey)
        number = to_number(value)
        if canonical is not None and number is not None:
            row.values[canonical] = number
        elif number is not None:
            row.values[key] = number
        elif isinstance(value, str):
            row.labels[key] = value[:500]
    return row


def parse_live_insights(payload: Any) -> list[InsightMetric]:
    """Parse the Data Export API answer; unknown shapes become an empty list, bad rows are skipped."""
    if isinstance(payload, dict):
        # Tolerate a wrapper object ({"data": [...]}, {"metrics": [...]}) or a single metric.
        for key in ("data", "metrics", "value", "results"):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
        else:
            payload = [payload]
    if not isinstance(payload, list):
        log.warning("clarity export: unexpected answer of type %s", type(payload).__name__)
        return []
    metrics: list[InsightMetric] = []
    for block in payload:
        if not isinstance(block, dict):
            continue
        lowered = {norm_key(k): v for k, v in block.items() if isinstance(k, str)}
        raw_name = lowered.get("metricname") or lowered.get("metric") or lowered.get("name")
        if not isinstance(raw_name, str) or not raw_name.strip():
            continue
        info = lowered.get("information") or lowered.get("info") or lowered.get("rows") or []
        if isinstance(info, dict):
            info = [info]
        if not isinstance(info, list):
            continue
        rows = [r for r in (_parse_row(i) for i in info) if r is not None]
        metrics.append(InsightMetric(name=canonical_metric(raw_name), raw_name=raw_name, rows=rows))
    return metrics


# --- Recordings list -------------------------------------------------------------------------------

_LINK = re.compile(r"/player/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})/?$")
_DURATION_PART = re.compile(r"(\d+)\s*(hour|hr|h|minute|min|m|second|sec|s)[a-z]*", re.IGNORECASE)


def parse_player_link(link: Any) -> tuple[str, str, str] | None:
    """(projectId, userId, sessionId) from https://clarity.microsoft.com/player/{p}/{u}/{s}."""
    if not isinstance(link, str) or len(link) > 2000:
        return None
    path = urlsplit(link.strip()).path
    m = _LINK.search(path)
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3)


def parse_duration(value: Any) -> int | None:
    """Seconds from "09 minutes and 05 seconds", "1 hour 2 minutes", "00:09:05", or a number."""
    number = to_number(value)
    if number is not None:
        return int(number)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"\d{1,3}(:\d{2}){1,2}", text):
        parts = [int(p) for p in text.split(":")]
        seconds = 0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds
    total = 0
    found = False
    for amount, unit in _DURATION_PART.findall(text):
        found = True
        u = unit.lower()
        total += int(amount) * (3600 if u.startswith("h") else 60 if u.startswith("m") else 1)
    return total if found else None


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


_SMART_EVENTS = {
    "deadclick": "deadClicks",
    "deadclicks": "deadClicks",
    "rageclick": "rageClicks",
    "rageclicks": "rageClicks",
    "quickback": "quickbacks",
    "quickbackclick": "quickbacks",
    "quickbackclicks": "quickbacks",
    "excessivescroll": "excessiveScrolls",
    "errorclick": "errorClicks",
    "errorclicks": "errorClicks",
    "scripterror": "scriptErrors",
    "javascripterror": "scriptErrors",
    "click": "clicks",
}


@dataclass
class RecordingItem:
    project_id: str
    user_id: str
    session_id: str
    link: str
    timestamp: datetime | None
    total_duration_seconds: int | None
    active_duration_seconds: int | None
    pages_count: int | None
    click_count: int | None
    smart_events: dict[str, int]
    pages: list[dict[str, Any]]

    def clarity_data(self) -> dict[str, Any]:
        """What is stored on the session (user_sessions.clarity_data)."""
        return {
            "source": "clarity_recordings",
            "link": self.link,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "totalDurationSeconds": self.total_duration_seconds,
            "activeDurationSeconds": self.active_duration_seconds,
            "pagesCount": self.pages_count,
            "clickCount": self.click_count,
            "smartEvents": self.smart_events,
            "pages": self.pages,
        }


def parse_recording(item: Any) -> RecordingItem | None:
    """One item of the recordings list, or None (logged) when it has no usable player link."""
    if not isinstance(item, dict):
        log.info("clarity recordings: skipped an item of type %s", type(item).__name__)
        return None
    link = item.get("link") or item.get("Link") or item.get("recordingUrl")
    ids = parse_player_link(link)
    if ids is None:
        log.info("clarity recordings: skipped an item without a player link")
        return None
    smart: dict[str, int] = {}
    pages: list[dict[str, Any]] = []
    timeline = item.get("timeline")
    if isinstance(timeline, list):
        for page in timeline[:200]:
            if not isinstance(page, dict):
                continue
            url = page.get("url")
            page_counts: dict[str, int] = {}
            events = page.get("timelineEvents")
            if isinstance(events, list):
                for ev in events[:2000]:
                    if not isinstance(ev, dict):
                        continue
                    kind = _SMART_EVENTS.get(norm_key(str(ev.get("eventtype") or ev.get("eventType") or "")))
                    if kind:
                        smart[kind] = smart.get(kind, 0) + 1
                        page_counts[kind] = page_counts.get(kind, 0) + 1
            if isinstance(url, str):
                title = page.get("displayTitle")
                pages.append(
                    {
                        "url": url[:2000],
                        "title": title[:300] if isinstance(title, str) else None,
                        "events": page_counts,
                    }
                )
    pages_count = to_number(item.get("pagesCount"))
    clicks = to_number(item.get("sessionClickCount"))
    return RecordingItem(
        project_id=ids[0],
        user_id=ids[1],
        session_id=ids[2],
        link=str(link)[:2000],
        timestamp=parse_timestamp(item.get("timestamp")),
        total_duration_seconds=parse_duration(item.get("totalDuration")),
        active_duration_seconds=parse_duration(item.get("activeDuration")),
        pages_count=int(pages_count) if pages_count is not None else (len(pages) or None),
        click_count=int(clicks) if clicks is not None else None,
        smart_events=smart,
        pages=pages,
    )


def page_path(url: str) -> str:
    """The path of a page URL, as site context matches pages: "/pay" for https://shop.example/pay/?x=1."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return text[:500]
    path = parts.path if (parts.scheme or parts.netloc) else text.split("?", 1)[0].split("#", 1)[0]
    path = path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path[:500]
