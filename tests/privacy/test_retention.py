"""Retention drops sessions and events past retention_days and IPs past ip_retention_days, nothing newer."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from supportlens.auth.models import AgentSession
from supportlens.db.base import utcnow
from supportlens.privacy.retention import run_retention
from supportlens.sessions.models import SessionAnnotation, SessionCustomerMapping, SessionEvent, UserSession
from tests.support.agents import make_agent


def _session(sid: str, days_ago: float, duration_min: int = 10) -> UserSession:
    end = utcnow() - timedelta(days=days_ago)
    return UserSession(
        clarity_project_id="p",
        clarity_user_id=f"u-{sid}",
        clarity_session_id=sid,
        customer_email=f"{sid}@example.com",
        session_start=end - timedelta(minutes=duration_min),
        session_end=end,
        client_ip="198.51.100.20",
    )


async def _seed(db):
    sessions = {
        "old": _session("old", 45),
        "edge_old": _session("edge_old", 30.01),
        "edge_new": _session("edge_new", 29.9),
        "ip_old": _session("ip_old", 8),
        "fresh": _session("fresh", 0.1),
    }
    db.add_all(sessions.values())
    await db.flush()
    for s in sessions.values():
        db.add(SessionEvent(id=uuid.uuid4(), session_id=s.id, event_type="click", timestamp=s.session_start))
        db.add(
            SessionCustomerMapping(
                session_id=s.id,
                customer_email=s.customer_email,
                confidence_score=1.0,
                mapping_method="email_match",
                evidence=[],
            )
        )
        db.add(
            SessionAnnotation(
                session_id=s.id, timestamp=s.session_start, note="n", category="issue", severity="low"
            )
        )
    await db.commit()
    return {k: v.id for k, v in sessions.items()}


async def test_retention_drops_old_data_and_nothing_newer(engine, db, settings):
    ids = await _seed(db)
    report = await run_retention(engine, settings)
    assert report.sessions_deleted == 2
    db.expire_all()
    left = {s.clarity_session_id: s for s in (await db.scalars(select(UserSession))).all()}
    assert set(left) == {"edge_new", "ip_old", "fresh"}
    events = (await db.scalars(select(SessionEvent.session_id))).all()
    assert set(events) == {ids["edge_new"], ids["ip_old"], ids["fresh"]}
    assert len((await db.scalars(select(SessionCustomerMapping.id))).all()) == 3
    assert len((await db.scalars(select(SessionAnnotation.id))).all()) == 3
    # IPs: gone after 7 days, kept for the newer session
    assert left["ip_old"].client_ip is None and left["edge_new"].client_ip is None
    assert left["fresh"].client_ip == "198.51.100.20"
    # Idempotent: a second run changes nothing
    again = await run_retention(engine, settings)
    assert again.sessions_deleted == 0 and again.events_deleted == 0 and again.ips_cleared == 0


async def test_old_events_of_a_session_still_kept_are_deleted(engine, db, settings):
    s = _session("long", 1)
    db.add(s)
    await db.flush()
    old = SessionEvent(
        id=uuid.uuid4(), session_id=s.id, event_type="click", timestamp=utcnow() - timedelta(days=31)
    )
    new = SessionEvent(
        id=uuid.uuid4(), session_id=s.id, event_type="click", timestamp=utcnow() - timedelta(days=1)
    )
    db.add_all([old, new])
    await db.commit()
    new_id = new.id
    report = await run_retention(engine, settings)
    assert report.events_deleted + len(report.partitions_dropped) >= 1
    db.expire_all()
    assert (await db.scalars(select(SessionEvent.id))).all() == [new_id]


async def test_configured_days_are_honoured(engine, db, settings_factory):
    await _seed(db)
    await run_retention(engine, settings_factory(retention_days=60, ip_retention_days=1))
    db.expire_all()
    left = {s.clarity_session_id: s for s in (await db.scalars(select(UserSession))).all()}
    assert set(left) == {"old", "edge_old", "edge_new", "ip_old", "fresh"}
    assert left["fresh"].client_ip == "198.51.100.20" and left["ip_old"].client_ip is None


async def test_agent_session_ips_are_cleared_and_expired_sessions_removed(engine, db, sessionmaker, settings):
    agent = await make_agent(sessionmaker, "agent")
    now = utcnow()
    db.add_all(
        [
            AgentSession(
                agent_id=agent.id,
                token_hash="a" * 64,
                csrf_token="x",
                created_at=now - timedelta(days=40),
                last_seen_at=now - timedelta(days=40),
                expires_at=now - timedelta(days=39),
                ip="192.0.2.1",
            ),
            AgentSession(
                agent_id=agent.id,
                token_hash="b" * 64,
                csrf_token="x",
                created_at=now - timedelta(days=8),
                last_seen_at=now - timedelta(days=8),
                expires_at=now - timedelta(days=7),
                ip="192.0.2.2",
            ),
            AgentSession(
                agent_id=agent.id,
                token_hash="c" * 64,
                csrf_token="x",
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
                ip="192.0.2.3",
            ),
        ]
    )
    await db.commit()
    await run_retention(engine, settings)
    db.expire_all()
    rows = {r.token_hash[0]: r.ip for r in (await db.scalars(select(AgentSession))).all()}
    assert rows == {"b": None, "c": "192.0.2.3"}


async def test_retention_is_a_daily_periodic_task_run_by_the_worker(settings, engine, db, sessionmaker):
    from supportlens.tasks import schedule
    from supportlens.tasks.queue import Runtime
    from tests.support.queue import run_periodic_now

    [task] = [t for t in schedule.periodic_tasks(settings) if t.name == schedule.RETENTION_TASK]
    assert task.cron == "17 3 * * *"  # daily, at a quiet hour (UTC)
    old = _session("old-by-task", settings.retention_days + 2)
    db.add(old)
    await db.commit()
    await run_periodic_now(Runtime(settings, engine, sessionmaker), [schedule.RETENTION_TASK])
    db.expire_all()
    assert await db.scalar(select(UserSession).where(UserSession.clarity_session_id == "old-by-task")) is None


async def test_postgres_drops_whole_day_partitions(engine, db, settings):
    from supportlens.db import partitions

    async with engine.begin() as conn:
        if not await partitions.is_partitioned(conn):
            pytest.fail("session_events is not partitioned on PostgreSQL")
        day = (utcnow() - timedelta(days=40)).date()
        await partitions.create_day_partition(conn, day)
    s = _session("part", 40)
    db.add(s)
    await db.flush()
    db.add(SessionEvent(id=uuid.uuid4(), session_id=s.id, event_type="click", timestamp=s.session_start))
    await db.commit()
    report = await run_retention(engine, settings)
    assert partitions.partition_name(day) in " ".join(report.partitions_dropped)
    async with engine.connect() as conn:
        assert day not in await partitions.list_event_partitions(conn)
        assert (await conn.execute(text("SELECT count(*) FROM session_events"))).scalar() == 0


async def test_a_busy_browser_is_forgotten_with_its_last_session(engine, db, settings):
    # The mapping engine marks a browser past its session cap (busy); the mark holds a Clarity userId, so it
    # goes when the browser's sessions have.
    from supportlens.mapping.models import MappingBusyBrowser

    db.add_all([_session("old", 45), _session("fresh", 0.1)])
    db.add_all(
        [
            MappingBusyBrowser(clarity_user_id="u-old"),
            MappingBusyBrowser(clarity_user_id="u-fresh"),
        ]
    )
    await db.commit()
    report = await run_retention(engine, settings)
    assert report.busy_browsers_forgotten == 1
    db.expire_all()
    assert (await db.scalars(select(MappingBusyBrowser.clarity_user_id))).all() == ["u-fresh"]


async def test_a_busy_address_is_forgotten_after_the_ip_period(engine, db, settings):
    from supportlens.mapping.models import MappingBusyIp

    db.add_all(
        [
            MappingBusyIp(ip_key="old", since=utcnow() - timedelta(days=8)),
            MappingBusyIp(ip_key="new", since=utcnow() - timedelta(days=1)),
        ]
    )
    await db.commit()
    report = await run_retention(engine, settings)
    assert report.busy_ips_forgotten == 1
    db.expire_all()
    assert (await db.scalars(select(MappingBusyIp.ip_key))).all() == ["new"]
