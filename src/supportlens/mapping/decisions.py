"""Agents' decisions on links: link and unlink (and confirm and dismiss of a possible session), which
re-scoring keeps, and the erasure of a customer's mapping facts. Each holds the mapping mutex, as a
mapping job does, so a decision and a re-score never interleave."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.db.base import utcnow
from supportlens.mapping.engine import mapping_mutex, rescore
from supportlens.mapping.facts import FactKeys, RescoreContext, normalise_email
from supportlens.mapping.models import MappingIdentity
from supportlens.sessions.models import SessionCustomerMapping, UserSession


class NotUndecided(LookupError):
    """A confirm or dismiss found no automatic link of the pair (`decided`: an agent already decided)."""

    def __init__(self, *, decided: bool) -> None:
        super().__init__("already decided" if decided else "no automatic link")
        self.decided = decided


async def set_manual(
    db: AsyncSession,
    *,
    session: UserSession,
    email: str,
    decision: str,
    agent: Any,
    reason: str | None,
    keys: FactKeys,
    possible: bool = False,
) -> SessionCustomerMapping:
    """An agent links ("link") or unlinks ("unlink") a session and a customer. Does not commit.

    `possible`: the agent confirms ("link") or dismisses ("unlink") a link the engine scored and nobody
    decided on yet; NotUndecided when there is none (checked under the mutex, so a re-score or another
    agent's decision in between is seen)."""
    if decision not in ("link", "unlink"):
        raise ValueError("decision must be link or unlink")
    email = normalise_email(email)
    await mapping_mutex(db)
    ctx = RescoreContext(keys)
    row = await db.scalar(
        select(SessionCustomerMapping).where(
            SessionCustomerMapping.session_id == session.id, SessionCustomerMapping.customer_email == email
        )
    )
    if possible and (row is None or row.manual_decision is not None):
        raise NotUndecided(decided=row is not None)
    who = getattr(agent, "name", "") or getattr(agent, "email", "") or "an agent"
    day = utcnow()
    if possible:
        verb = "confirmed" if decision == "link" else "dismissed"
    else:
        verb = "linked" if decision == "link" else "unlinked"
    text = f"{verb} by {who} on {day.day} {day.strftime('%b')}"
    if reason:
        text += f": {reason.strip()[:500]}"
    manual_item: dict[str, object] = {
        "method": "manual",
        "score": 1.0 if decision == "link" else 0.0,
        "reason": text,
    }
    earlier = [e for e in (row.evidence if row is not None else []) if e.get("method") != "manual"]
    if row is None:
        row = SessionCustomerMapping(session_id=session.id, customer_email=email)
        db.add(row)
    elif row.manual_decision is None:
        # The engine's own result, kept so that this decision labels it. A later decision on the same
        # pair keeps the first one's: it is the engine's prediction that is being judged.
        row.auto_method = row.mapping_method
        row.auto_confidence = row.confidence_score
    row.decided_at = day
    row.confidence_score = 1.0 if decision == "link" else 0.0
    row.mapping_method = "manual"
    row.evidence = [manual_item, *earlier]
    row.manual_decision = decision
    row.decided_by_agent_id = getattr(agent, "id", None)
    row.reason = reason.strip()[:500] if reason else None
    await db.flush()
    await rescore(db, session, ctx)
    await db.flush()
    return row


async def forget_customer(db: AsyncSession, email: str) -> None:
    """Erasure helper: remove the customer's identity sightings (links are removed with the sessions)."""
    email = normalise_email(email)
    await mapping_mutex(db)
    # Mapping jobs not yet run (or failed) carry the e-mail in their arguments; one running now finds
    # the erased sessions gone, and its job is deleted when it ends.
    await db.execute(
        text(
            "DELETE FROM procrastinate_jobs WHERE task_name = :task AND args->>'email' = :email "
            "AND status <> 'doing'"
        ),
        {"task": "supportlens.map_session", "email": email},
    )
    await db.execute(delete(MappingIdentity).where(MappingIdentity.customer_email == email))
    await db.execute(delete(SessionCustomerMapping).where(SessionCustomerMapping.customer_email == email))
