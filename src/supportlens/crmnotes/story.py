"""A session's story in a few lines, for a HubSpot note (pure: the session's marks in, the note out).

Model: the marks are the session's navigations, JavaScript errors, rage clicks and dead clicks in time
order (what the player marks). The note says: when and how long; the pages in order (the path only,
repeats of the same page in a row once, at most PAGES_MAX); the errors (count, then up to ERRORS_MAX
distinct messages with where and when); the frustration (rage and dead clicks, with the busiest
element); and, when the agent chose a moment, the last mark at or before it. Then the agent's comment
and two links: the Clarity recording (when there is one) and the session in SupportLens at the moment.
Everything here comes from the customer's browser or an agent: `NoteContent.to_html` escapes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from supportlens.integrations.hubspot.notes import NoteContent, NoteLink

PAGES_MAX = 8
ERRORS_MAX = 3
LABELS = {"error": "JavaScript error", "rage_click": "Rage click", "dead_click": "Dead click"}


def clock(ms: int) -> str:
    """An offset from the session's start as m:ss (or h:mm:ss)."""
    seconds = max(0, ms) // 1000
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def page_of(url: str | None) -> str:
    if not url:
        return "?"
    parts = urlsplit(url)
    return parts.path or "/" if parts.netloc else url


def _what(mark: dict[str, Any]) -> str:
    kind = mark.get("type")
    where = page_of(mark.get("url"))
    if kind == "navigation":
        title = mark.get("title")
        return f"opened {where}" + (f" ({title})" if title else "")
    if kind == "error":
        return f"JavaScript error on {where}: {mark.get('msg') or 'error'}"
    target = mark.get("sel") or mark.get("text") or "an element"
    return f"{LABELS.get(str(kind), str(kind))} on {target} ({where})"


def _span(start: datetime, end: datetime) -> str:
    minutes = max(0, round((end - start).total_seconds() / 60))
    same_day = start.date() == end.date()
    head = start.strftime("%b %d, %H:%M").replace(" 0", " ")
    tail = end.strftime("%H:%M") if same_day else end.strftime("%b %d, %H:%M").replace(" 0", " ")
    return f"{head}–{tail} UTC ({minutes} min)"


def session_story(
    *,
    start: datetime,
    end: datetime,
    marks: Sequence[dict[str, Any]],
    at_ms: int | None,
    comment: str | None,
    recording_url: str | None,
    supportlens_url: str,
) -> NoteContent:
    title = f"SupportLens: session of {_span(start, end)}"
    if at_ms is not None:
        title += f", moment {clock(at_ms)}"
    lines: list[str] = []

    pages: list[str] = []
    for m in marks:
        if m.get("type") == "navigation":
            page = page_of(m.get("url"))
            if not pages or pages[-1] != page:
                pages.append(page)
    if pages:
        shown = " → ".join(pages[:PAGES_MAX])
        more = f" … (+{len(pages) - PAGES_MAX} more)" if len(pages) > PAGES_MAX else ""
        lines.append(f"Pages ({len(pages)}): {shown}{more}")

    errors = [m for m in marks if m.get("type") == "error"]
    if errors:
        lines.append(f"Errors: {len(errors)}")
        seen: set[str] = set()
        for m in errors:
            msg = str(m.get("msg") or "JavaScript error")
            if msg in seen:
                continue
            seen.add(msg)
            lines.append(f"Error at {clock(int(m.get('t', 0)))} on {page_of(m.get('url'))}: {msg}")
            if len(seen) == ERRORS_MAX:
                break
    else:
        lines.append("Errors: none")

    frustration = []
    for kind in ("rage_click", "dead_click"):
        found = [m for m in marks if m.get("type") == kind]
        if found:
            targets = Counter(str(m.get("sel") or m.get("text") or "?") for m in found)
            top, n = targets.most_common(1)[0]
            label = LABELS[kind].lower() + ("s" if len(found) != 1 else "")
            frustration.append(f"{len(found)} {label} (most on {top}, {n}×)")
    lines.append("Frustration: " + ("; ".join(frustration) if frustration else "no rage or dead clicks"))

    if at_ms is not None:
        before = [m for m in marks if int(m.get("t", 0)) <= at_ms]
        if before:
            last = before[-1]
            lines.append(f"At {clock(at_ms)}: {_what(last)} (at {clock(int(last.get('t', 0)))})")
        else:
            lines.append(f"At {clock(at_ms)}: before the first page was recorded")

    links = []
    if recording_url and urlsplit(recording_url).scheme in ("http", "https"):
        links.append(NoteLink("Clarity recording", recording_url))
    links.append(NoteLink("Open in SupportLens", supportlens_url))
    return NoteContent(title=title, lines=tuple(lines), comment=comment or None, links=tuple(links))
