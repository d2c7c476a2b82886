"""Dwolla webhook events in, and the "Needs attention" queue they feed.

Receiving (the webhook view): a verified event is inserted once, keyed by its id (`ON CONFLICT DO
NOTHING`), and its job is enqueued in the same transaction, so a stored event always has its job and a
replay (Dwolla retries anything but a 2xx) inserts nothing and enqueues nothing.

Handling (the job, `handle_event`): for a failed-transfer topic, read the transfer (amount, ACH return
code) and its customer (e-mail, name) from Dwolla, find the session moment just before the failure, and
make one case per transfer (`ON CONFLICT (transfer_id) DO NOTHING`: Dwolla sends more than one topic
for one failure). A Dwolla error raises, and the queue retries the job.

Model of "the moment before it" (`pick_moment`, pure): among the customer's JavaScript errors, rage
clicks and dead clicks in the 30 minutes up to the failure (issues.trouble's window), an error
wins over a rage click over a dead click, the latest of a kind wins. Queue order: cases with an error
moment first, then newest failure first.

Case states: open → taken (by one agent) → closed; an open case can be closed directly. Every change
is audited with the customer named by a keyed hash only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.attention.models import AttentionCase, DwollaWebhookEvent
from supportlens.auth.models import Agent
from supportlens.customers.emails import canonical_email_or_none
from supportlens.db.base import utcnow
from supportlens.db.engine import autocommit
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.dwolla.return_codes import describe
from supportlens.integrations.dwolla.webhooks import FAILED_TRANSFER_TOPICS, DwollaEvent
from supportlens.integrations.errors import UpstreamNotFound
from supportlens.issues.trouble import CORRELATION_WINDOW, MOMENT_LABELS, Failure, Moment, moments_near
from supportlens.problems import ProblemError
from supportlens.web.viewer import Fields, Pii

ATTENTION_QUEUE = "attention"
HANDLE_EVENT_TASK = "supportlens.attention.handle_dwolla_event"
MAX_LIST = 200  # the queue is a worklist, not an archive
STATUSES = ("open", "taken", "closed", "active", "all")  # active: open or taken
MOMENT_RANK = {"error": 0, "rage_click": 1, "dead_click": 2}

# The event and its job in one statement: one round trip, atomic on its own (no BEGIN/COMMIT round
# trips), and a replay (the event id already stored) inserts neither. procrastinate_defer_jobs_v1 is this
# same INSERT; the queue's triggers (the "deferred" event, the NOTIFY that wakes a worker) fire on it.
_STORE_AND_ENQUEUE = text(
    "WITH stored AS ("
    " INSERT INTO dwolla_webhook_events"
    " (event_id, topic, resource_id, customer_dwolla_id, created, received_at)"
    " VALUES (:event_id, :topic, :resource_id, :customer_dwolla_id, :created, :received_at)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    " INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args)"
    " SELECT :queue, :task, 0, NULL, NULL, jsonb_build_object('event_id', stored.event_id) FROM stored"
    " RETURNING id"
)


# ----------------------------------------------------------------------------------------- receiving


async def store_event(db: AsyncSession, event: DwollaEvent) -> bool:
    """Store the event with its job, committed (autocommit: the statement is the transaction).

    False: the event id was stored before, and nothing was written."""
    await autocommit(db)
    made = await db.execute(
        _STORE_AND_ENQUEUE,
        {
            "event_id": event.id,
            "topic": event.topic,
            "resource_id": event.resource_id,
            "customer_dwolla_id": event.customer_id,
            "created": event.created,
            "received_at": utcnow(),
            "queue": ATTENTION_QUEUE,
            "task": HANDLE_EVENT_TASK,
        },
    )
    stored = made.scalar_one_or_none() is not None
    await db.commit()  # ends the autocommit "transaction" (nothing left to write)
    return stored


# ------------------------------------------------------------------------------------------ handling


def pick_moment(failed_at: datetime, moments: Iterable[Moment]) -> Moment | None:
    """The moment before the failure (see the module's docstring), or None."""
    before = [
        m for m in moments if failed_at - CORRELATION_WINDOW <= m.at <= failed_at and m.kind in MOMENT_RANK
    ]
    if not before:
        return None
    return min(before, key=lambda m: (MOMENT_RANK[m.kind], -m.at.timestamp()))


async def handle_event(
    sessionmaker: Any, dwolla: DwollaClient, *, event_id: str, min_confidence: float
) -> str:
    """Make the case for one stored event. Returns its outcome (also stored on the event)."""
    async with sessionmaker() as db:
        event = await db.get(DwollaWebhookEvent, event_id)
        if event is None:  # erased since
            return "gone"
        if event.processed_at is not None:
            return event.outcome or "done"
        topic, transfer_id, created = event.topic, event.resource_id, event.created
        event_customer = event.customer_dwolla_id
        await db.rollback()  # no transaction held open while Dwolla answers

    outcome = "ignored"
    values: dict[str, Any] | None = None
    if topic in FAILED_TRANSFER_TOPICS:
        values = await _failed_transfer(dwolla, transfer_id, event_customer)
        if values is None:
            outcome = "transfer_not_found"
        else:
            values |= {"event_id": event_id, "topic": topic, "failed_at": created}

    async with sessionmaker() as db:
        if values is not None:
            values |= await _moment_before(db, values, created, min_confidence)
            made = await db.execute(
                insert(AttentionCase)
                .values(id=uuid.uuid4(), status="open", created_at=utcnow(), **values)
                .on_conflict_do_nothing(index_elements=["transfer_id"])
                .returning(AttentionCase.id)
            )
            outcome = "case" if made.scalar_one_or_none() is not None else "duplicate_transfer"
        await db.execute(
            update(DwollaWebhookEvent)
            .where(DwollaWebhookEvent.event_id == event_id, DwollaWebhookEvent.processed_at.is_(None))
            .values(processed_at=utcnow(), outcome=outcome)
        )
        await db.commit()
    return outcome


# --------------------------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class CaseRow:
    case: AttentionCase
    assignee_email: str | None
    assignee_name: str | None


def parse_status(raw: str) -> str:
    if raw not in STATUSES:
        raise ProblemError(
            400, "Invalid parameter", f"status must be one of {', '.join(STATUSES)}", field="status"
        )
    return raw


def _order() -> Sequence[Any]:
    c = AttentionCase
    error_first = case((c.moment_kind == "error", 0), else_=1)
    return (error_first, c.failed_at.desc(), c.id)


async def list_cases(db: AsyncSession, status: str = "active", limit: int = MAX_LIST) -> list[CaseRow]:
    c = AttentionCase
    q = select(c, Agent.email, Agent.name).outerjoin(Agent, Agent.id == c.assignee_id)
    if status == "active":
        q = q.where(c.status.in_(("open", "taken")))
    elif status != "all":
        q = q.where(c.status == status)
    rows = (await db.execute(q.order_by(*_order()).limit(min(limit, MAX_LIST)))).all()
    return [CaseRow(r[0], r[1], r[2]) for r in rows]


async def queue_version(db: AsyncSession) -> str:
    """Changes whenever a case is made or changes state (the home page polls it; it names no customer)."""
    c = AttentionCase
    changed = func.greatest(
        c.created_at, func.coalesce(c.taken_at, c.created_at), func.coalesce(c.closed_at, c.created_at)
    )
    row = (await db.execute(select(func.count(), func.max(changed)).select_from(c))).one()
    latest = row[1].timestamp() if row[1] else 0
    return f"{row[0]}-{latest:.6f}-{await unhandled_count(db)}"


UNHANDLED_AFTER_SECONDS = 30


async def unhandled_count(db: AsyncSession) -> int:
    """Failed-payment events received over 30 s ago whose case is not made yet (Dwolla not answering
    the job's reads: the queue retries them)."""
    e = DwollaWebhookEvent
    since = utcnow() - timedelta(seconds=UNHANDLED_AFTER_SECONDS)
    q = (
        select(func.count())
        .select_from(e)
        .where(e.processed_at.is_(None), e.received_at < since, e.topic.in_(sorted(FAILED_TRANSFER_TOPICS)))
    )
    return int(await db.scalar(q) or 0)


async def get_case(db: AsyncSession, case_id: uuid.UUID, *, for_update: bool = False) -> AttentionCase:
    q = select(AttentionCase).where(AttentionCase.id == case_id)
    found = (await db.execute(q.with_for_update() if for_update else q)).scalar_one_or_none()
    if found is None:
        raise ProblemError(404, "Not found", "no such case", field="case_id")
    return found


async def take(db: AsyncSession, case_id: uuid.UUID, agent: Agent) -> AttentionCase:
    """Assign an open case to `agent` (taking one's own case again is a no-op). No commit."""
    found = await get_case(db, case_id, for_update=True)
    if found.status == "closed":
        raise ProblemError(409, "Case closed", "this case is closed")
    if found.status == "taken" and found.assignee_id != agent.id:
        raise ProblemError(409, "Case taken", "another agent has taken this case")
    if found.status == "open":
        found.status, found.assignee_id, found.taken_at = "taken", agent.id, utcnow()
    return found


async def close(db: AsyncSession, case_id: uuid.UUID, agent: Agent) -> AttentionCase:
    """Close a case: an open one, one's own, or (an admin) anyone's. No commit."""
    found = await get_case(db, case_id, for_update=True)
    if found.status == "closed":
        raise ProblemError(409, "Case closed", "this case is already closed")
    if found.status == "taken" and found.assignee_id != agent.id and agent.role != "admin":
        raise ProblemError(409, "Case taken", "another agent has taken this case")
    if found.assignee_id is None:
        found.assignee_id = agent.id
    found.status, found.closed_at = "closed", utcnow()
    return found


def amount_words(c: AttentionCase) -> str:
    try:
        value = f"{float(c.amount):,.2f}"
    except ValueError:
        value = c.amount
    return f"${value}" if c.currency == "USD" else f"{value} {c.currency}"


def reason_words(c: AttentionCase) -> str:
    code = describe(c.failure_code, c.failure_description)
    return code.plain if code else "the payment failed (Dwolla gave no return code)"


def ago_words(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def moment_words(c: AttentionCase) -> str | None:
    if c.moment_kind is None or c.moment_at is None:
        return None
    minutes = round((c.failed_at - c.moment_at).total_seconds() / 60)
    label = MOMENT_LABELS.get(c.moment_kind, c.moment_kind)
    return f"{label} {minutes} min before" if minutes >= 1 else f"{label} just before"


# What a viewer sees of a case (web/viewer.py masks these).
CASE_FIELDS: Fields = {"customerEmail": Pii.email}


def case_json(row: CaseRow) -> dict[str, Any]:
    c = row.case
    moment = None
    if c.moment_session_id is not None and c.moment_kind is not None:
        moment = {
            "sessionId": str(c.moment_session_id),
            "atMs": c.moment_offset_ms or 0,
            "kind": c.moment_kind,
        }
    code = describe(c.failure_code, c.failure_description)
    return {
        "id": str(c.id),
        "customerEmail": c.customer_email or None,
        "customerName": c.customer_name,
        "transferId": c.transfer_id,
        "amount": c.amount,
        "currency": c.currency,
        "failureCode": c.failure_code,
        "failureMeaning": reason_words(c),
        "nextStep": code.next_step if code else None,
        "moment": moment,
        "failedAt": c.failed_at.isoformat(),
        "createdAt": c.created_at.isoformat(),
        "status": c.status,
        "assignee": row.assignee_email,
    }


# -------------------------------------------------------------------------------------------- erasure


async def erase_customer(db: AsyncSession, email: str) -> dict[str, int]:
    """Delete the customer's cases and the webhook events about them (by event and Dwolla customer id)."""
    c = AttentionCase
    mine = (await db.execute(select(c.event_id, c.customer_dwolla_id).where(c.customer_email == email))).all()
    event_ids = {r[0] for r in mine}
    dwolla_ids = {r[1] for r in mine if r[1]}
    cases = await db.execute(delete(c).where(c.customer_email == email))
    events = 0
    if event_ids or dwolla_ids:
        e = DwollaWebhookEvent
        gone = await db.execute(
            delete(e).where(or_(e.event_id.in_(event_ids), e.customer_dwolla_id.in_(dwolla_ids)))
        )
        events = int(getattr(gone, "rowcount", 0) or 0)
    return {"attention_cases": int(getattr(cases, "rowcount", 0) or 0), "dwolla_webhook_events": events}


async def _failed_transfer(
    dwolla: DwollaClient, transfer_id: str, event_customer: str | None
) -> dict[str, Any] | None:
    """The case's transfer and customer as Dwolla has them now; None when the transfer is gone."""
    # The customer's link comes with customer-level events: read it alongside the transfer.
    reads: list[Any] = [dwolla.get_transfer(transfer_id)]
    if event_customer:
        reads.append(dwolla.get_customer(event_customer))
    got = await asyncio.gather(*reads, return_exceptions=True)
    for failed in got:
        if isinstance(failed, BaseException) and not isinstance(failed, UpstreamNotFound):
            raise failed
    detail = got[0] if not isinstance(got[0], BaseException) else None
    if detail is None:
        return None
    customer_id = detail.customer_id or event_customer
    customer = got[1] if len(got) > 1 and not isinstance(got[1], BaseException) else None
    if customer_id and (customer is None or customer.id.lower() != customer_id.lower()):
        try:
            customer = await dwolla.get_customer(customer_id)
        except UpstreamNotFound:  # a case without the customer's name beats no case
            customer = None
    email = canonical_email_or_none(customer.email) if customer else None
    name = (customer.name or customer.business_name or None) if customer else None
    t = detail.transfer
    return {
        "transfer_id": t.id.lower(),
        "customer_dwolla_id": customer_id,
        "customer_email": email,
        "customer_name": name[:200] if name else None,
        "amount": t.amount[:32],
        "currency": (t.currency or "USD")[:3],
        "failure_code": (t.failure_code or None) and t.failure_code[:8],
        "failure_description": (t.failure_description or None) and t.failure_description[:200],
    }


async def _moment_before(
    db: AsyncSession, values: dict[str, Any], created: datetime, min_confidence: float
) -> dict[str, Any]:
    """The session moment (error, rage or dead click) before the failure, as the case's columns."""
    if not values["customer_email"]:
        return {}
    failure = Failure(
        transfer_id=values["transfer_id"],
        customer_id=values["customer_dwolla_id"] or "",
        customer_email=values["customer_email"],
        at=created,
        amount=values["amount"],
        currency=values["currency"],
        code=values["failure_code"],
        title=values["failure_description"],
    )
    found = await moments_near(db, {values["customer_email"]}, [failure], min_confidence=min_confidence)
    moment = pick_moment(created, found)
    if moment is None:
        return {}
    return {
        "moment_session_id": uuid.UUID(moment.session_id),
        "moment_kind": moment.kind,
        "moment_at": moment.at,
        "moment_offset_ms": max(0, int((moment.at - moment.session_start).total_seconds() * 1000)),
    }
