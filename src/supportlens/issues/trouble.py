"""What went wrong for a customer: each failed transfer with the session moments around it.

Model: a returned (failed) Dwolla transfer created at T and a session moment at M (a JavaScript error, a
rage click or a dead click) belong together when |M - T| <= 30 minutes: the customer was on the site,
in trouble, around the time the payment went wrong. `pair_up` is that one rule; the journey page
(badges, correlations) and the search page's "what happened" summary both use it. `summarize` is pure
(failures and moments in, the summary out, newest failure first); `load_summary` reads the moments from
the database for the failures in the Dwolla panel's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.integrations.dwolla.return_codes import describe
from supportlens.issues.reads import only_them_of_events
from supportlens.sessions.models import SessionEvent, UserSession
from supportlens.sessions.reads import customer_sessions_filter, error_message
from supportlens.web.viewer import Pii

CORRELATION_WINDOW = timedelta(minutes=30)
MOMENT_TYPES = ("error", "rage_click", "dead_click")
MOMENT_LABELS = {"error": "JavaScript error", "rage_click": "Rage click", "dead_click": "Dead click"}
MAX_FAILURES = 5  # the summary is a glance; the Dwolla panel lists every transfer
MAX_MOMENTS = 6  # per failure, nearest first in time order
MAX_TEXT = 300  # error messages and selectors come from the public ingest: bounded on screen

T = TypeVar("T")
M = TypeVar("M")


def pair_up(
    transfers: Iterable[tuple[T, datetime]],
    moments: Iterable[tuple[M, datetime]],
    window: timedelta = CORRELATION_WINDOW,
) -> list[tuple[T, M, timedelta]]:
    """Every (transfer, moment, moment minus transfer) no more than `window` apart, in input order."""
    moment_list = list(moments)
    return [
        (t, m, m_at - t_at) for t, t_at in transfers for m, m_at in moment_list if abs(m_at - t_at) <= window
    ]


def minutes_apart(delta: timedelta) -> int:
    return round(abs(delta.total_seconds()) / 60)


@dataclass(frozen=True)
class Failure:
    transfer_id: str
    customer_id: str
    customer_email: str | None
    at: datetime
    amount: str
    currency: str
    code: str | None
    title: str | None
    customer_name: str | None = None


@dataclass(frozen=True)
class Moment:
    session_id: str
    session_start: datetime
    at: datetime
    kind: str  # one of MOMENT_TYPES
    page_url: str | None
    selector: str | None
    message: str | None
    event_id: str | None = None  # the stored event's id: its issue, and the journey page's anchor


def _page(url: str | None) -> str:
    if not url:
        return "(unknown page)"
    parts = urlsplit(url)
    return (parts.path or "/") if parts.scheme else url


def _bounded(text: str | None) -> str | None:
    if not text:
        return None
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _amount(f: Failure) -> str:
    try:
        value = f"{Decimal(f.amount):,.2f}"
    except (InvalidOperation, ValueError):
        value = f.amount
    return f"${value}" if f.currency == "USD" else f"{value} {f.currency}"


def _moment_json(
    m: Moment,
    delta: timedelta,
    journey_email: str | None,
    viewer: bool,
    issues: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    offset = max(0, int((m.at - m.session_start).total_seconds() * 1000))
    # Masked here, not where the answer is served: before the texts are cut to length and the page is
    # read from the URL (the rule is web/viewer.py's).
    clean = Pii.text.shown if viewer else (lambda s: s)
    url = clean(m.page_url) if m.page_url else None
    day = m.at.astimezone(UTC).date().isoformat()
    journey = (
        f"/customers/{quote(journey_email, safe='@')}/journey?from={day}&to={day}" if journey_email else None
    )
    if journey and m.event_id:
        journey += f"#j-ev-{m.event_id}"  # journey.moment_anchor: lands on this moment, its day open
    return {
        "sessionId": m.session_id,
        "at": m.at.astimezone(UTC).isoformat(),
        "offsetMs": offset,
        "kind": m.kind,
        "label": MOMENT_LABELS.get(m.kind, m.kind),
        "page": _page(url),
        "pageUrl": _bounded(url),
        "element": _bounded(clean(m.selector) if m.selector else None),
        "message": _bounded(clean(m.message) if m.message else None),
        "minutesApart": minutes_apart(delta),
        "when": "before" if delta.total_seconds() < 0 else "after",
        "link": f"/sessions/{m.session_id}?t={offset}",
        "journeyLink": journey,
        "issue": (issues or {}).get(m.event_id or ""),  # "is it only them?": its issue, other customers
    }


def _mark_repeats(moments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clicks of one kind on one page after the first are `repeat`s; the first says how many there
    were (`repeats`). A phone shows the first alone with its count (errors are never folded)."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for m in moments:
        m["repeats"], m["repeat"] = 1, False
        if m["kind"] == "error":
            continue
        key = (m["kind"], m["page"])
        if key in first:
            first[key]["repeats"] += 1
            m["repeat"] = True
        else:
            first[key] = m
    return moments


def summarize(
    failures: Iterable[Failure],
    moments: Iterable[Moment],
    *,
    journey_email: Mapping[str, str | None] | None = None,
    viewer: bool = False,
    issues: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The failures newest first (at most MAX_FAILURES), each with its moments in time order.

    `journey_email` maps a Dwolla customer id to the e-mail whose journey the moments link to."""
    newest = sorted(failures, key=lambda f: f.at, reverse=True)[:MAX_FAILURES]
    near: dict[str, list[tuple[Moment, timedelta]]] = {f.transfer_id: [] for f in newest}
    for f, m, delta in pair_up(((f, f.at) for f in newest), ((m, m.at) for m in moments)):
        near[f.transfer_id].append((m, delta))
    out = []
    for f in newest:
        code = describe(f.code, f.title)
        pairs = sorted(near[f.transfer_id], key=lambda md: abs(md[1]))[:MAX_MOMENTS]
        pairs.sort(key=lambda md: md[0].at)
        email = (journey_email or {}).get(f.customer_id)
        out.append(
            {
                "transferId": f.transfer_id,
                "customerId": f.customer_id,
                "customerName": f.customer_name,
                "at": f.at.astimezone(UTC).isoformat(),
                "amount": _amount(f),
                "returnCode": code.code if code else None,
                "returnTitle": code.title if code else None,
                "meaning": code.plain if code else "the payment failed (Dwolla gave no return code)",
                "nextStep": code.next_step if code else None,
                "moments": _mark_repeats(
                    [_moment_json(m, delta, email, viewer, issues) for m, delta in pairs]
                ),
            }
        )
    several = len({f.customer_id for f in newest}) > 1  # a name search can find several customers
    return {"status": "trouble" if out else "clear", "failures": out, "severalCustomers": several}


def _customer_name(customer: dict[str, Any]) -> str | None:
    name = " ".join(p for p in (customer.get("firstName"), customer.get("lastName")) if p)
    return name or customer.get("businessName") or None


def failures_from_dwolla(items: list[dict[str, Any]]) -> list[Failure]:
    """The failed transfers in the Dwolla source's answer (DwollaCustomerDetail dumps)."""
    found: list[Failure] = []
    for item in items:
        customer = item.get("customer") or {}
        for t in item.get("transfers") or []:
            if t.get("status") != "failed" and not t.get("failureCode"):
                continue
            created = t.get("created")
            if not created:
                continue
            at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            found.append(
                Failure(
                    transfer_id=str(t.get("id")),
                    customer_id=str(customer.get("id")),
                    customer_email=(customer.get("email") or "").lower() or None,
                    at=at if at.tzinfo else at.replace(tzinfo=UTC),
                    amount=str(t.get("amount") or ""),
                    currency=str(t.get("currency") or "USD"),
                    code=t.get("failureCode"),
                    title=t.get("failureDescription"),
                    customer_name=_customer_name(customer),
                )
            )
    return found


async def moments_near(
    db: AsyncSession, emails: set[str], failures: list[Failure], *, min_confidence: float
) -> list[Moment]:
    """The customers' errors, rage and dead clicks within the window of any of the failures."""
    if not emails or not failures:
        return []
    e = SessionEvent
    windows = [
        and_(e.timestamp >= f.at - CORRELATION_WINDOW, e.timestamp <= f.at + CORRELATION_WINDOW)
        for f in failures
    ]
    linked = or_(*(customer_sessions_filter(email, min_confidence) for email in sorted(emails)))
    q = (
        select(e, UserSession.session_start)
        .join(UserSession, UserSession.id == e.session_id)
        .where(linked, e.event_type.in_(MOMENT_TYPES), or_(*windows))
        .order_by(e.timestamp)
        .limit(MAX_FAILURES * MAX_MOMENTS * 4)
    )
    moments = []
    for ev, start in (await db.execute(q)).all():
        data = ev.event_data if isinstance(ev.event_data, dict) else {}
        moments.append(
            Moment(
                session_id=str(ev.session_id),
                session_start=start,
                at=ev.timestamp,
                kind=ev.event_type,
                page_url=ev.page_url,
                selector=ev.element_selector,
                message=error_message(data) if ev.event_type == "error" else None,
                event_id=str(ev.id),
            )
        )
    return moments


async def load_summary(
    db: AsyncSession,
    dwolla_status: str,
    dwolla_items: list[dict[str, Any]],
    *,
    query_email: str | None,
    min_confidence: float,
    viewer: bool,
    dwolla_error: str | None = None,
) -> dict[str, Any]:
    """The "what happened" summary for the search page and `GET /api/search`.

    Dwolla not answering degrades this summary only: `status: unavailable` with the reason."""
    if dwolla_status != "ok":
        return {"status": "unavailable", "failures": [], "error": dwolla_error}
    if not dwolla_items:
        return {"status": "no_customer", "failures": []}
    failures = sorted(failures_from_dwolla(dwolla_items), key=lambda f: f.at, reverse=True)[:MAX_FAILURES]
    journey_email = {f.customer_id: f.customer_email or query_email for f in failures}
    emails = {x for x in (query_email, *(f.customer_email for f in failures)) if x}
    moments = await moments_near(db, emails, failures, min_confidence=min_confidence)
    issues = await issues_of_moments(db, moments, emails, min_confidence=min_confidence)
    return summarize(failures, moments, journey_email=journey_email, viewer=viewer, issues=issues)


async def issues_of_moments(
    db: AsyncSession, moments: list[Moment], customers: set[str], *, min_confidence: float
) -> dict[str, dict[str, Any]]:
    """Each moment's issue and how many other customers hit it (one query for them all)."""
    ids = [uuid.UUID(m.event_id) for m in moments if m.event_id]
    return await only_them_of_events(db, ids, sorted(customers), min_confidence=min_confidence)
