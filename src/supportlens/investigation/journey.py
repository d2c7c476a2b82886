"""The customer journey: sessions, Dwolla and HubSpot activity in one chronological stream.

HubSpot and Dwolla are read through the customer directory (`customers/directory.py`: its cache, shared
in-flight lookups and per-source deadlines, the same answers the search page shows), while the sessions
are read; a vendor that fails or is not configured leaves its part out with a note and never blocks the
rest. A failed transfer and a session error
within 30 minutes of each other are paired and badged on both items.

Every item carries a stable `anchor` (an HTML id on the journey page): `j-ev-<event id>` for a session
moment, `j-session-<id>` for a session's start, `j-transfer-<id>` for a transfer, and a digest of
what it says for the rest. The search page's "what happened" summary links to `#j-ev-<event id>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.customers.directory import CustomerDirectory, SourceResult
from supportlens.customers.emails import canonical_email_or_none
from supportlens.customers.query import parse_query
from supportlens.integrations.dwolla.models import DwollaCustomerDetail
from supportlens.integrations.hubspot.models import HubSpotContactBundle
from supportlens.issues.trouble import minutes_apart, pair_up
from supportlens.sessions import analytics
from supportlens.sessions import reads as svc
from supportlens.sessions.models import SessionEvent, UserSession
from supportlens.web.viewer import Fields, Pii

SOURCES = ("sessions", "dwolla", "hubspot")
VENDOR_NAMES = {"dwolla": "Dwolla", "hubspot": "HubSpot"}
MAX_SESSIONS = 50
MAX_SESSION_ITEMS = 1500
JOURNEY_EVENT_TYPES = ("navigation", "error", "rage_click", "dead_click")
# A transfer's status -> its journey item kind and verb; any other status (pending) shows as created.
TRANSFER_STATES = {
    "failed": ("transfer_failed", "failed"),
    "processed": ("transfer_processed", "processed"),
    "cancelled": ("transfer_cancelled", "cancelled"),
}


# What a viewer sees of a journey (web/viewer.py masks these where it is served): the texts and URLs
# of its items, the badges and pairs that quote them, and the customer's e-mail.
VIEWER_FIELDS: Fields = {
    "customer": Pii.email,
    **dict.fromkeys(("title", "detail", "url", "badges"), Pii.text),
    **dict.fromkeys(("transferTitle", "errorTitle", "errorDetail"), Pii.text),
}


def _parse_when(value: Any) -> datetime | None:
    """HubSpot dates arrive as ISO strings or epoch milliseconds; Dwolla's are datetimes."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _path(url: str | None) -> str:
    if not url:
        return "(unknown page)"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path or url if parts.scheme else url


def moment_anchor(event_id: uuid.UUID | str) -> str:
    """The journey page's id of one session moment (the summary's "journey" link ends with it)."""
    return f"j-ev-{event_id}"


def _anchor(item: dict[str, Any]) -> str:
    if item.get("transferId"):
        return f"j-transfer-{item['transferId']}"
    if item["kind"] == "session_start" and item.get("sessionId"):
        return f"j-session-{item['sessionId']}"
    digest = hashlib.sha256(f"{item['at']}|{item['kind']}|{item['title']}|{item['detail']}".encode())
    return f"j-{item['source']}-{digest.hexdigest()[:12]}"


def _item(at: datetime, source: str, kind: str, title: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    item = {
        "at": at.astimezone(UTC).isoformat(),
        "source": source,
        "kind": kind,
        "title": title,
        "detail": detail,
        **extra,
    }
    item.setdefault("anchor", _anchor(item))
    return item


async def _session_items(
    db: AsyncSession, email: str, min_confidence: float, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    rows = await analytics.customer_sessions(
        db, email, min_confidence=min_confidence, limit=MAX_SESSIONS, since=since, until=until
    )
    sessions: dict[uuid.UUID, UserSession] = {s.id: s for s, _ in rows}
    items: list[dict[str, Any]] = []
    for s in sessions.values():
        items.append(
            _item(
                s.session_start,
                "sessions",
                "session_start",
                f"Session started on {s.device_type or 'unknown device'}",
                f"{s.page_views} pages, {s.duration_seconds // 60} min; entry {_path(s.entry_url)}",
                sessionId=str(s.id),
                link=f"/sessions/{s.id}",
            )
        )
    if not sessions:
        return items
    ev = SessionEvent
    q = (
        select(ev)
        .where(ev.session_id.in_(list(sessions)), ev.event_type.in_(JOURNEY_EVENT_TYPES))
        .order_by(ev.timestamp.desc())
        .limit(MAX_SESSION_ITEMS)
    )
    for e in (await db.scalars(q)).all():
        s = sessions[e.session_id]
        off = svc.offset_ms(e.timestamp, s.session_start)
        data = e.event_data if isinstance(e.event_data, dict) else {}
        link = f"/sessions/{s.id}?t={off}"
        common = {
            "sessionId": str(s.id),
            "offsetMs": off,
            "url": e.page_url,
            "link": link,
            "anchor": moment_anchor(e.id),
        }
        if e.event_type == "navigation":
            items.append(_item(e.timestamp, "sessions", "page", f"Visited {_path(e.page_url)}", "", **common))
        elif e.event_type == "error":
            msg = svc.error_message(data) or "JavaScript error"
            items.append(
                _item(
                    e.timestamp,
                    "sessions",
                    "error",
                    f"JavaScript error on {_path(e.page_url)}",
                    msg,
                    eventId=str(e.id),  # which issue it was grouped into ("is it only them?")
                    **common,
                )
            )
        else:
            where = e.element_selector or ""
            label = "Rage click" if e.event_type == "rage_click" else "Dead click"
            items.append(
                _item(
                    e.timestamp,
                    "sessions",
                    e.event_type,
                    f"{label} on {_path(e.page_url)}",
                    where,
                    eventId=str(e.id),
                    **common,
                )
            )
    return items


def _dwolla_items(detail: DwollaCustomerDetail) -> list[dict[str, Any]]:
    """The customer's Dwolla record as journey items: created, transfers, funding sources."""
    match, transfers, sources = detail.customer, detail.transfers, detail.funding_sources
    items: list[dict[str, Any]] = []
    if match and match.created:
        items.append(
            _item(
                match.created,
                "dwolla",
                "customer_created",
                "Dwolla customer created",
                f"status {match.status}",
            )
        )
    for t in transfers:
        when = _parse_when(t.created)
        if when is None:
            continue
        amount = f"${t.amount}" if t.currency == "USD" else f"{t.amount} {t.currency}"
        kind, verb = TRANSFER_STATES.get(t.status, ("transfer_created", "created"))
        title = f"Transfer of {amount} {verb}"
        if t.status == "failed":
            code = " ".join(p for p in (t.failure_code, t.failure_description) if p) or "failed"
            items.append(_item(when, "dwolla", kind, title, code, transferId=t.id, returnCode=t.failure_code))
        else:
            note = t.status if kind == "transfer_created" else ""
            items.append(_item(when, "dwolla", kind, title, note, transferId=t.id))
    for f in sources:
        when = _parse_when(f.created)
        if when is None:
            continue
        name = " ".join(p for p in (f.bank_name, f.name) if p) or f.type or "funding source"
        if f.removed:
            items.append(
                _item(
                    when,
                    "dwolla",
                    "funding_source_removed",
                    "Funding source removed",
                    f"{name} (added at this time)",
                )
            )
        else:
            items.append(
                _item(
                    when,
                    "dwolla",
                    "funding_source_added",
                    "Funding source added",
                    f"{name}, {f.status or ''}".strip(", "),
                )
            )
    return items


def _hubspot_items(bundle: HubSpotContactBundle) -> list[dict[str, Any]]:
    """The customer's HubSpot contact as journey items: created, lifecycle, deals, tickets."""
    c = bundle.contact
    items: list[dict[str, Any]] = []
    if c.created_at:
        items.append(
            _item(c.created_at, "hubspot", "contact_created", "HubSpot contact created", c.name or "")
        )
    if c.lifecycle_stage and c.updated_at:
        items.append(
            _item(
                c.updated_at,
                "hubspot",
                "lifecycle",
                f"Lifecycle stage: {c.lifecycle_stage}",
                "as of last update",
            )
        )
    for d in bundle.deals:
        when = _parse_when(d.close_date)
        if when:
            amount = f" (${d.amount})" if d.amount else ""
            items.append(
                _item(
                    when, "hubspot", "deal", f"Deal {d.name or d.id}{amount}", f"stage {d.stage or 'unknown'}"
                )
            )
    for t in bundle.tickets:
        when = _parse_when(t.created)
        if when:
            items.append(
                _item(
                    when,
                    "hubspot",
                    "ticket",
                    f"Ticket: {t.subject or t.id}",
                    f"{t.stage or ''} {t.priority or ''}".strip(),
                )
            )
    return items


def _vendor_items(
    email: str, answers: dict[str, SourceResult], status: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """This customer's HubSpot contact and Dwolla customer among the directory's answers, as items.

    The Dwolla customer is the one with this e-mail, else the one HubSpot's contact names by its
    Dwolla id (the same correlation the search page makes)."""
    items: list[dict[str, Any]] = []
    dwolla_id: str | None = None
    for src, answer in answers.items():
        name = VENDOR_NAMES[src]
        if answer.status == "timeout":
            status[src] = {
                "status": "timeout",
                "note": f"{name} did not answer in time; its events are missing.",
            }
        elif answer.status == "error":
            status[src] = {
                "status": "error",
                "note": f"{name} could not be reached; its events are missing.",
                "error": (answer.error or "error")[:200],
            }
        else:
            status[src] = {"status": "ok"}
    hubspot = answers.get("hubspot")
    if hubspot is not None and hubspot.status == "ok":
        bundles = [HubSpotContactBundle.model_validate(i) for i in hubspot.items]
        bundle = next((b for b in bundles if canonical_email_or_none(b.contact.email) == email), None)
        if bundle is not None:
            dwolla_id = bundle.dwolla_id
            items += _hubspot_items(bundle)
    dwolla = answers.get("dwolla")
    if dwolla is not None and dwolla.status == "ok":
        details = [DwollaCustomerDetail.model_validate(i) for i in dwolla.items]
        detail = next((d for d in details if canonical_email_or_none(d.customer.email) == email), None)
        if detail is None and dwolla_id:
            detail = next((d for d in details if d.customer.id.lower() == dwolla_id.lower()), None)
        if detail is not None:
            items += _dwolla_items(detail)
    return items


def _configured(s: Settings, source: str) -> bool:
    if source == "dwolla":
        return bool(s.dwolla_key.get_secret_value() and s.dwolla_secret.get_secret_value())
    if source == "hubspot":
        return bool(s.hubspot_token.get_secret_value())
    return True


def correlate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair each failed transfer with session errors within 30 minutes (`trouble.pair_up`); badge both."""
    failed = [(i, datetime.fromisoformat(i["at"])) for i in items if i["kind"] == "transfer_failed"]
    errors = [(i, datetime.fromisoformat(i["at"])) for i in items if i["kind"] == "error"]
    pairs = []
    for t, e, delta in pair_up(failed, errors):
        t_at, e_at = datetime.fromisoformat(t["at"]), datetime.fromisoformat(e["at"])
        t.setdefault("badges", []).append(f"{e['title']} at {e_at:%H:%M}")
        e.setdefault("badges", []).append(f"{t['title']} at {t_at:%H:%M}")
        pairs.append(
            {
                "transferId": t.get("transferId"),
                "transferAt": t["at"],
                "transferTitle": t["title"],
                "transferAnchor": t.get("anchor"),
                "returnCode": t.get("returnCode"),
                "errorAt": e["at"],
                "errorTitle": e["title"],
                "errorDetail": e.get("detail", ""),
                "errorAnchor": e.get("anchor"),
                "errorLink": e.get("link"),
                "sessionId": e.get("sessionId"),
                "url": e.get("url"),
                "minutesApart": minutes_apart(delta),
            }
        )
    return pairs


def days_newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journey page's days (UTC), newest first, each with its items newest first; `hot` when a
    failed transfer or a session error of that day is paired."""
    days: dict[str, dict[str, Any]] = {}
    for item in reversed(items):
        day = days.setdefault(item["at"][:10], {"day": item["at"][:10], "items": [], "hot": False})
        day["items"].append(item)
        day["hot"] = day["hot"] or bool(item.get("badges"))
    return list(days.values())


async def build(
    directory: CustomerDirectory,
    settings: Settings,
    db: AsyncSession,
    email: str,
    *,
    sources: set[str],
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    status: dict[str, dict[str, Any]] = {}
    wanted: list[str] = [
        src for src in ("hubspot", "dwolla") if src in sources and _configured(settings, src)
    ]
    vendors = asyncio.gather(*(directory.source(src, parse_query(email)) for src in wanted))
    for src in ("dwolla", "hubspot"):
        if src not in sources:
            status[src] = {"status": "skipped", "note": "left out by the filter"}
        elif src not in wanted:
            status[src] = {
                "status": "not_configured",
                "note": f"{VENDOR_NAMES[src]} is not configured, so its events are missing.",
            }
    items: list[dict[str, Any]] = []
    try:
        if "sessions" in sources:
            items += await _session_items(db, email, settings.mapping_min_confidence, since, until)
            status["sessions"] = {"status": "ok"}
        else:
            status["sessions"] = {"status": "skipped", "note": "left out by the filter"}
    except BaseException:
        vendors.cancel()
        raise
    answers: dict[str, SourceResult] = dict(zip(wanted, await vendors, strict=True))
    items += _vendor_items(email, answers, status)
    if since is not None or until is not None:
        items = [
            i
            for i in items
            if (since is None or datetime.fromisoformat(i["at"]) >= since)
            and (until is None or datetime.fromisoformat(i["at"]) < until)
        ]
    items.sort(key=lambda i: (i["at"], i["source"] != "sessions"))
    pairs = correlate(items)
    return {
        "customer": email,
        "items": items,
        "sources": status,
        "correlations": pairs,
    }
