"""session_events partitioned by day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine

from supportlens.db import migrate, partitions
from supportlens.sessions.models import SessionEvent, UserSession
from tests.support import database

NOW = datetime.now(UTC)


async def _session(db, when: datetime) -> UserSession:
    s = UserSession(
        clarity_project_id="p1",
        clarity_user_id=uuid.uuid4().hex[:10],
        clarity_session_id=uuid.uuid4().hex[:10],
        session_start=when,
        session_end=when + timedelta(minutes=5),
    )
    db.add(s)
    await db.flush()
    return s


def _event_row(session_id: uuid.UUID, ts: datetime, event_id: uuid.UUID | None = None) -> dict:
    return {
        "id": event_id or uuid.uuid4(),
        "session_id": session_id,
        "event_type": "click",
        "event_data": {"text": "Pay"},
        "timestamp": ts,
        "page_url": "https://shop.example/pay",
    }


async def _insert_ignore(db, rows: list[dict]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING without a conflict target, as ingest does."""
    result = await db.execute(insert(SessionEvent).values(rows).on_conflict_do_nothing())
    return int(result.rowcount or 0)


async def test_events_table_is_partitioned_with_composite_key_fk_and_days_ahead(db):
    conn = await db.connection()
    assert await partitions.is_partitioned(conn)
    pk = (
        await db.execute(
            text(
                "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
                "WHERE c.conname = 'pk_session_events' AND c.conrelid = 'session_events'::regclass"
            )
        )
    ).scalar_one()
    assert sorted(pk) == ["id", "timestamp"]
    fk = (
        await db.execute(
            text(
                "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = 'session_events'::regclass"
            )
        )
    ).scalar_one()
    assert fk == "user_sessions"
    days = await partitions.list_event_partitions(conn)
    today = NOW.date()
    for offset in range(-partitions.DEFAULT_DAYS_BACK, partitions.DEFAULT_DAYS_AHEAD + 1):
        assert today + timedelta(days=offset) in days
    default = (
        await db.execute(text("SELECT to_regclass('session_event_partitions.session_events_default')"))
    ).scalar_one()
    assert default is not None


async def test_rows_land_in_their_day_and_the_fk_cascades(db):
    s = await _session(db, NOW)
    old = datetime(2001, 1, 2, 3, 4, tzinfo=UTC)
    await _insert_ignore(db, [_event_row(s.id, NOW), _event_row(s.id, old)])
    rows = (
        await db.execute(
            text('SELECT tableoid::regclass::text, "timestamp" FROM session_events ORDER BY "timestamp"')
        )
    ).all()
    assert rows[0][0] == "session_event_partitions.session_events_default"
    assert rows[1][0] == f"session_event_partitions.{partitions.partition_name(NOW.date())}"
    with pytest.raises(Exception, match="foreign key"):
        async with db.begin_nested():
            await _insert_ignore(db, [_event_row(uuid.uuid4(), NOW)])
    await db.delete(s)
    await db.flush()
    assert (await db.execute(text("SELECT count(*) FROM session_events"))).scalar_one() == 0
    await db.rollback()


async def test_insert_on_conflict_do_nothing_is_idempotent(db):
    s = await _session(db, NOW)
    rows = [_event_row(s.id, NOW - timedelta(seconds=i)) for i in range(5)]
    rows.append(_event_row(s.id, datetime(2001, 1, 2, tzinfo=UTC)))  # the default partition
    assert await _insert_ignore(db, rows) == 6
    assert await _insert_ignore(db, rows) == 0  # a retried batch adds nothing
    assert await _insert_ignore(db, [*rows[:2], _event_row(s.id, NOW)]) == 1
    assert (await db.execute(text("SELECT count(*) FROM session_events"))).scalar_one() == 7
    await db.commit()


async def test_ensure_creates_only_the_missing_days(engine):
    async with engine.begin() as conn:
        created = await partitions.ensure_event_partitions(conn, days_ahead=3)
        # already prepared by the migration / startup: nothing to create for the next days
        assert created == []
        far = NOW.date() + timedelta(days=30)
        created = await partitions.ensure_event_partitions(conn, days_ahead=0, days_back=1, today=far)
        assert [c.split(".")[1].strip('"') for c in created] == [
            partitions.partition_name(far - timedelta(days=1)),
            partitions.partition_name(far),
        ]
        await conn.rollback()


async def test_a_day_with_rows_in_the_default_partition_is_created_by_moving_them(db):
    s = await _session(db, NOW)
    far = NOW.date() + timedelta(days=40)
    ts = datetime.combine(far, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    await _insert_ignore(db, [_event_row(s.id, ts), _event_row(s.id, ts + timedelta(hours=1))])
    conn = await db.connection()
    created = await partitions.ensure_event_partitions(conn, days_ahead=0, days_back=0, today=far)
    assert created == [f'"session_event_partitions"."{partitions.partition_name(far)}"']
    where = (
        (await db.execute(text("SELECT DISTINCT tableoid::regclass::text FROM session_events")))
        .scalars()
        .all()
    )
    assert where == [f"session_event_partitions.{partitions.partition_name(far)}"]
    # idempotency still holds for those moved rows
    assert (await partitions.ensure_event_partitions(conn, days_ahead=0, days_back=0, today=far)) == []
    await db.rollback()


async def test_drop_event_partitions_before_drops_whole_old_days_only(db):
    conn = await db.connection()
    today = NOW.date()
    back = today - timedelta(days=10)
    await partitions.ensure_event_partitions(conn, days_ahead=0, days_back=3, today=back)
    s = await _session(db, NOW)
    old_ts = datetime.combine(back, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    await _insert_ignore(db, [_event_row(s.id, old_ts), _event_row(s.id, NOW)])
    dropped = await partitions.drop_event_partitions_before(conn, back)
    assert dropped == [
        f'"session_event_partitions"."{partitions.partition_name(back - timedelta(days=d))}"'
        for d in (3, 2, 1)
    ]
    assert (await db.execute(text("SELECT count(*) FROM session_events"))).scalar_one() == 2
    dropped = await partitions.drop_event_partitions_before(conn, back + timedelta(days=1))
    assert dropped == [f'"session_event_partitions"."{partitions.partition_name(back)}"']
    assert (await db.execute(text("SELECT count(*) FROM session_events"))).scalar_one() == 1
    assert NOW.date() in await partitions.list_event_partitions(conn)
    await db.rollback()


async def test_migration_copies_existing_rows_and_downgrade_restores_a_plain_table(tmp_path):
    url = await database.create_database(tmp_path)
    engine = create_async_engine(url)
    try:
        await migrate.upgrade_async(url, "0007_security")
        sid, eid = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO user_sessions (id, clarity_project_id, clarity_user_id, clarity_session_id, "
                    "session_start, session_end, duration_seconds, page_views, event_count, click_count, "
                    "error_count, rage_click_count, dead_click_count, max_scroll_depth, device_type, "
                    "clarity_confirmed, clarity_data, created_at, updated_at) VALUES (:id, 'p', 'u', 's', "
                    "now(), now(), 0, 0, 0, 0, 0, 0, 0, 0, 'desktop', false, '{}', now(), now())"
                ),
                {"id": sid},
            )
            for i, ts in enumerate([NOW - timedelta(days=5), NOW, NOW - timedelta(days=400)]):
                await conn.execute(
                    text(
                        'INSERT INTO session_events (id, session_id, event_type, event_data, "timestamp") '
                        "VALUES (:id, :sid, 'click', '{}', :ts)"
                    ),
                    {"id": eid if i == 0 else uuid.uuid4(), "sid": sid, "ts": ts},
                )
        await migrate.upgrade_async(url)
        async with engine.connect() as conn:
            assert await partitions.is_partitioned(conn)
            places = (
                (
                    await conn.execute(
                        text('SELECT tableoid::regclass::text FROM session_events ORDER BY "timestamp"')
                    )
                )
                .scalars()
                .all()
            )
            assert places == [
                "session_event_partitions.session_events_default",
                f"session_event_partitions.{partitions.partition_name((NOW - timedelta(days=5)).date())}",
                f"session_event_partitions.{partitions.partition_name(NOW.date())}",
            ]
            idx = (
                (
                    await conn.execute(
                        text("SELECT indexname FROM pg_indexes WHERE tablename = 'session_events'")
                    )
                )
                .scalars()
                .all()
            )
            assert "ix_session_events_session_id_timestamp" in idx
        await migrate.downgrade_async(url, "0007_security")
        async with engine.connect() as conn:
            assert not await partitions.is_partitioned(conn)
            assert (await conn.execute(text("SELECT count(*) FROM session_events"))).scalar_one() == 3
            kind = (
                await conn.execute(
                    text("SELECT relkind::text FROM pg_class WHERE relname = 'session_events'")
                )
            ).scalar()
            assert kind == "r"
            schema = (
                await conn.execute(text("SELECT to_regnamespace('session_event_partitions')"))
            ).scalar_one()
            assert schema is None
            idx = (
                (
                    await conn.execute(
                        text("SELECT indexname FROM pg_indexes WHERE tablename = 'session_events'")
                    )
                )
                .scalars()
                .all()
            )
            assert sorted(idx) == ["ix_session_events_session_id_timestamp", "pk_session_events"]
        await migrate.upgrade_async(url)
    finally:
        await engine.dispose()
        await database.drop_database(url)
