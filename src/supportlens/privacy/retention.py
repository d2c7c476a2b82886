"""Retention: sessions and events older than `retention_days` go; client IPs after `ip_retention_days`.

Runs daily as the periodic task "supportlens.retention" (supportlens.tasks.schedule); callable directly
as `await run_retention(engine, settings)`. On PostgreSQL whole days of events are dropped as
partitions (supportlens.db.partitions), which is instant and leaves no dead rows; whatever is left
(the default partition, or a plain table) is deleted row by row in batches.

A session goes when it ended before the cut-off (a session still active keeps its events). Agents'
own sign-in sessions lose their IP address after the same IP period and are deleted once expired for
longer than the retention period. The mapping engine's marks of busy browsers go with their last
session, those of busy addresses after the IP period. The audit log is append-only and is kept as it
is (it holds no customer PII; see SECURITY.md). Closed Needs-attention cases go after the retention
period; Dwolla webhook events once handled and older than both the retention period and 4 days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from supportlens.auth.models import AgentSession
from supportlens.config import Settings
from supportlens.db.base import utcnow
from supportlens.logging import get_logger
from supportlens.mapping.models import MappingBusyBrowser, MappingBusyIp
from supportlens.sessions.models import SessionAnnotation, SessionCustomerMapping, SessionEvent, UserSession

log = get_logger("supportlens.retention")
BATCH = 1000
DAY_SECONDS = 24 * 3600


@dataclass
class RetentionReport:
    cutoff: datetime
    ip_cutoff: datetime
    partitions_dropped: list[str] = field(default_factory=list)
    events_deleted: int = 0
    sessions_deleted: int = 0
    ips_cleared: int = 0
    agent_sessions_deleted: int = 0
    busy_browsers_forgotten: int = 0
    busy_ips_forgotten: int = 0
    attention_cases_deleted: int = 0
    webhook_events_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cutoff"] = self.cutoff.isoformat()
        d["ip_cutoff"] = self.ip_cutoff.isoformat()
        return d


async def _drop_partitions(engine: AsyncEngine, cutoff: datetime) -> list[str]:
    try:
        from supportlens.db import partitions
    except ImportError:
        return []
    drop = getattr(partitions, "drop_event_partitions_before", None)
    if drop is None:
        return []
    async with engine.begin() as conn:
        # Only days that end before the cut-off: the partition of the cut-off day is handled row by row.
        return list(await drop(conn, cutoff.date()))


async def run_retention(
    engine: AsyncEngine, settings: Settings, now: datetime | None = None
) -> RetentionReport:
    now = now or utcnow()
    report = RetentionReport(
        cutoff=now - timedelta(days=settings.retention_days),
        ip_cutoff=now - timedelta(days=settings.ip_retention_days),
    )
    report.partitions_dropped = await _drop_partitions(engine, report.cutoff)
    await _delete_old_events(engine, report)
    await _delete_old_sessions(engine, report)
    async with engine.begin() as conn:
        await _forget_addresses(conn, report)
        await _delete_handled_payments_work(conn, report, now)
    log.info("retention", **report.as_dict())
    return report


async def _delete_old_events(engine: AsyncEngine, report: RetentionReport) -> None:
    """Events older than the cut-off (whatever partitions did not cover), in batches."""
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(SessionEvent.id).where(SessionEvent.timestamp < report.cutoff).limit(BATCH)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            await conn.execute(
                delete(SessionEvent).where(SessionEvent.id.in_(ids), SessionEvent.timestamp < report.cutoff)
            )
            report.events_deleted += len(ids)


async def _delete_old_sessions(engine: AsyncEngine, report: RetentionReport) -> None:
    """Sessions that ended before the cut-off, with what hangs off them, in batches."""
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(UserSession.id).where(UserSession.session_end < report.cutoff).limit(BATCH)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            await conn.execute(delete(SessionEvent).where(SessionEvent.session_id.in_(ids)))
            await conn.execute(delete(SessionAnnotation).where(SessionAnnotation.session_id.in_(ids)))
            await conn.execute(
                delete(SessionCustomerMapping).where(SessionCustomerMapping.session_id.in_(ids))
            )
            await conn.execute(delete(UserSession).where(UserSession.id.in_(ids)))
            report.sessions_deleted += len(ids)


async def _forget_addresses(conn: AsyncConnection, report: RetentionReport) -> None:
    """Client and agent IP addresses after the IP period; expired agent sessions; the engine's busy marks."""
    result = await conn.execute(
        update(UserSession)
        .where(UserSession.session_start < report.ip_cutoff, UserSession.client_ip.is_not(None))
        .values(client_ip=None)
    )
    report.ips_cleared = result.rowcount or 0
    await conn.execute(
        update(AgentSession)
        .where(AgentSession.created_at < report.ip_cutoff, AgentSession.ip.is_not(None))
        .values(ip=None)
    )
    result = await conn.execute(delete(AgentSession).where(AgentSession.expires_at < report.cutoff))
    report.agent_sessions_deleted = result.rowcount or 0
    # A browser the mapping engine marked busy is forgotten with its last session.
    sessions_left = select(UserSession.id).where(
        UserSession.clarity_user_id == MappingBusyBrowser.clarity_user_id
    )
    result = await conn.execute(delete(MappingBusyBrowser).where(~sessions_left.exists()))
    report.busy_browsers_forgotten = result.rowcount or 0
    # A busy address is forgotten after the IP period: the sessions that filled it have lost it.
    result = await conn.execute(delete(MappingBusyIp).where(MappingBusyIp.since < report.ip_cutoff))
    report.busy_ips_forgotten = result.rowcount or 0


async def _delete_handled_payments_work(
    conn: AsyncConnection, report: RetentionReport, now: datetime
) -> None:
    """Closed Needs-attention cases and handled Dwolla webhook events."""
    # Closed Needs-attention cases go after the retention period (open ones are work not done). A
    # webhook event is kept at least 4 days: its id must outlive Dwolla's 72 hours of retries.
    from supportlens.attention.models import AttentionCase, DwollaWebhookEvent

    result = await conn.execute(
        delete(AttentionCase).where(AttentionCase.status == "closed", AttentionCase.closed_at < report.cutoff)
    )
    report.attention_cases_deleted = result.rowcount or 0
    event_cutoff = min(report.cutoff, now - timedelta(days=4))
    result = await conn.execute(
        delete(DwollaWebhookEvent).where(
            DwollaWebhookEvent.received_at < event_cutoff, DwollaWebhookEvent.processed_at.is_not(None)
        )
    )
    report.webhook_events_deleted = result.rowcount or 0
