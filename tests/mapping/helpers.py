"""Drive the mapping engine: upsert the session row, then call on_ingest (as the mapping worker does for a
batch's job), or store the batch with its job and let the real worker map it (`store`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import supportlens.mapping.engine as engine
from supportlens.mapping.models import (
    MappingBusyBrowser,
    MappingBusyIp,
    MappingIdentity,
    MappingIpCustomer,
    MappingIpDevice,
)
from supportlens.sessions.models import SessionCustomerMapping, UserSession
from tests.support.keys import TEST_FACT_KEYS

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Batch:
    device: str
    session: str
    start_min: int  # minutes after T0
    length_min: int
    ip: str | None = None
    email: str | None = None
    automated: str | None = None  # what ingest found (sessions/automation.py)
    human: bool | None = None  # the page's "interacted" (None: not said)


async def send(db: AsyncSession, b: Batch, *, commit: bool = True) -> UserSession:
    start = T0 + timedelta(minutes=b.start_min)
    end = start + timedelta(minutes=b.length_min)
    return await send_at(
        db,
        b.device,
        b.session,
        start,
        end,
        ip=b.ip,
        email=b.email,
        commit=commit,
        automated=b.automated,
        human=b.human,
    )


async def store(db: AsyncSession, b: Batch) -> UserSession:
    """What ingest does with a batch: the session row and its mapping job, committed; nothing mapped."""
    from supportlens.tasks.mapping import enqueue_mapping

    start = T0 + timedelta(minutes=b.start_min)
    s = await _upsert(db, b, start, start + timedelta(minutes=b.length_min))
    await enqueue_mapping(db, session_id=s.id, email=b.email, client_ip=b.ip, acked_at=datetime.now(UTC))
    await db.commit()
    return s


async def send_at(
    db: AsyncSession,
    device: str,
    session: str,
    start: datetime,
    end: datetime,
    *,
    ip: str | None = None,
    email: str | None = None,
    commit: bool = True,
    automated: str | None = None,
    human: bool | None = None,
) -> UserSession:
    """One batch of a session seen from `start` to `end`, stored and mapped at once."""
    b = Batch(device, session, 0, 0, ip=ip, email=email, automated=automated, human=human)
    s = await _upsert(db, b, start, end)
    ref = engine.CustomerRef(email=b.email) if b.email else None
    await engine.on_ingest(db, session=s, identified=ref, client_ip=b.ip, keys=TEST_FACT_KEYS)
    if commit:
        await db.commit()
    return s


async def _upsert(db: AsyncSession, b: Batch, start: datetime, end: datetime) -> UserSession:
    """The session row as ingest leaves it after a batch."""
    s = await db.scalar(
        select(UserSession).where(
            UserSession.clarity_project_id == "p1",
            UserSession.clarity_user_id == b.device,
            UserSession.clarity_session_id == b.session,
        )
    )
    if s is None:
        s = UserSession(
            clarity_project_id="p1",
            clarity_user_id=b.device,
            clarity_session_id=b.session,
            session_start=start,
            session_end=end,
            client_ip=b.ip,
            customer_email=b.email,
            automated=b.automated,
            human_interaction=b.human,
        )
        db.add(s)
    else:
        s.session_start = min(s.session_start, start)
        s.session_end = max(s.session_end, end)
        s.client_ip = b.ip or s.client_ip
        s.customer_email = b.email or s.customer_email
        s.automated = s.automated or b.automated
        if b.human is not None:
            s.human_interaction = bool(s.human_interaction) or b.human
    await db.flush()
    return s


async def links(db: AsyncSession, *, with_evidence: bool = False) -> dict[tuple[str, str, str], Any]:
    """(device, session, email) -> (confidence, method[, evidence]) for every stored link."""
    rows = await db.execute(
        select(UserSession.clarity_user_id, UserSession.clarity_session_id, SessionCustomerMapping).join(
            SessionCustomerMapping, SessionCustomerMapping.session_id == UserSession.id
        )
    )
    return {
        (dev, sess, m.customer_email): (round(m.confidence_score, 4), m.mapping_method)
        + ((m.evidence,) if with_evidence else ())
        for dev, sess, m in rows
    }


async def link_of(db: AsyncSession, device: str, session: str) -> dict[str, Any]:
    """email -> row for one session."""
    s = await db.scalar(
        select(UserSession).where(
            UserSession.clarity_user_id == device, UserSession.clarity_session_id == session
        )
    )
    assert s is not None
    rows = (
        await db.scalars(select(SessionCustomerMapping).where(SessionCustomerMapping.session_id == s.id))
    ).all()
    return {r.customer_email: r for r in rows}


async def wipe(db: AsyncSession) -> None:
    for model in (
        SessionCustomerMapping,
        MappingIdentity,
        MappingIpCustomer,
        MappingIpDevice,
        MappingBusyBrowser,
        MappingBusyIp,
        UserSession,
    ):
        await db.execute(delete(model))
    await db.execute(text("DELETE FROM procrastinate_jobs"))
    await db.commit()
