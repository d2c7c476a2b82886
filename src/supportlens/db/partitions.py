"""Daily partitions of `session_events`.

`session_events` is a table partitioned by range of `timestamp`, one partition
per UTC day (`session_event_partitions.session_events_pYYYYMMDD`) plus a default partition for
rows outside the prepared days (late or clock-skewed events). The partitions live in their own
schema so that the application schema shows one logical table (and Alembic's model comparison
sees exactly the models).

- `ensure_event_partitions(conn)` creates the days around today that are missing; it runs at
  startup and as a job, and is safe to call from several replicas at once (advisory lock).
- `drop_event_partitions_before(conn, day)` drops whole days (retention): dropping a partition
  is instant and leaves no dead rows behind, unlike `DELETE`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from supportlens.logging import get_logger

log = get_logger("supportlens.partitions")

PARENT = "session_events"
PARTITION_SCHEMA = "session_event_partitions"
DEFAULT_PARTITION = f"{PARENT}_default"
_DAY_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")
# pg_advisory_xact_lock key: "SLpart" in ASCII, so replicas creating partitions take turns.
_LOCK_KEY = 0x534C70617274
DEFAULT_DAYS_AHEAD = 7
DEFAULT_DAYS_BACK = 2


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    m = _DAY_NAME.match(name)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC).date()


def _bound(day: date) -> str:
    return datetime.combine(day, time(0), tzinfo=UTC).isoformat()


def _today() -> date:
    return datetime.now(UTC).date()


async def is_partitioned(conn: AsyncConnection) -> bool:
    row = await conn.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"t": PARENT},
    )
    return row.first() is not None


async def list_event_partitions(conn: AsyncConnection) -> dict[date, str]:
    """Daily partitions attached to session_events: day -> qualified name."""
    if not await is_partitioned(conn):
        return {}
    rows = await conn.execute(
        text(
            "SELECT n.nspname, c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = (quote_ident(current_schema()) || '.' || :t)::regclass"
        ),
        {"t": PARENT},
    )
    found: dict[date, str] = {}
    for schema, name in rows:
        day = day_of(name)
        if day is not None:
            found[day] = f'"{schema}"."{name}"'
    return found


async def _parent(conn: AsyncConnection) -> str:
    schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
    return f'"{schema}"."{PARENT}"'


async def create_day_partition(conn: AsyncConnection, day: date) -> str:
    """Create (or leave) the partition of one day. Rows of that day already sitting in the default
    partition are moved into it, which PostgreSQL requires before the day can be attached."""
    parent = await _parent(conn)
    qualified = f'"{PARTITION_SCHEMA}"."{partition_name(day)}"'
    lo, hi = _bound(day), _bound(day + timedelta(days=1))
    default = f'"{PARTITION_SCHEMA}"."{DEFAULT_PARTITION}"'
    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PARTITION_SCHEMA}"'))
    has_default = (
        await conn.execute(text("SELECT to_regclass(:d) IS NOT NULL"), {"d": default})
    ).scalar_one()
    stray = False
    if has_default:
        stray = (
            await conn.execute(
                # identifiers are built here from constants and a date, never from input
                text(
                    f"SELECT EXISTS (SELECT 1 FROM {default} "  # noqa: S608
                    'WHERE "timestamp" >= :lo AND "timestamp" < :hi)'
                ),
                {"lo": datetime.fromisoformat(lo), "hi": datetime.fromisoformat(hi)},
            )
        ).scalar_one()
    if not stray:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {qualified} PARTITION OF {parent} "
                f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
            )
        )
        return qualified
    # Late rows for this day wait in the default partition: build the day as a plain table, move
    # them, then attach it (PostgreSQL checks the default partition holds nothing of that range).
    await conn.execute(text(f"CREATE TABLE {qualified} (LIKE {parent} INCLUDING DEFAULTS)"))
    await conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE \"timestamp\" >= '{lo}' AND \"timestamp\" < '{hi}' "  # noqa: S608
            f"RETURNING *) INSERT INTO {qualified} SELECT * FROM moved"
        )
    )
    await conn.execute(
        text(f"ALTER TABLE {parent} ATTACH PARTITION {qualified} FOR VALUES FROM ('{lo}') TO ('{hi}')")
    )
    log.info("event_partition_created_from_default", partition=qualified)
    return qualified


async def ensure_event_partitions(
    conn: AsyncConnection,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    days_back: int = DEFAULT_DAYS_BACK,
    *,
    today: date | None = None,
) -> list[str]:
    """Create the missing daily partitions from `today - days_back` to `today + days_ahead`.

    Returns the partitions created. A no-op (empty list) if the table is not partitioned
    (before migration 0008). Runs inside the caller's transaction; replicas serialise on an advisory lock.
    """
    if not await is_partitioned(conn):
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    existing = await list_event_partitions(conn)
    start = (today or _today()) - timedelta(days=days_back)
    created = []
    for offset in range(days_back + days_ahead + 1):
        day = start + timedelta(days=offset)
        if day not in existing:
            created.append(await create_day_partition(conn, day))
    if created:
        log.info("event_partitions_created", count=len(created), first=created[0], last=created[-1])
    return created


async def drop_event_partitions_before(conn: AsyncConnection, day: date) -> list[str]:
    """Drop every daily partition whose whole day is before `day` (retention). Returns the names
    dropped. Rows of those days in the default partition are left to row-level retention."""
    if not await is_partitioned(conn):
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    dropped = []
    for part_day, qualified in sorted((await list_event_partitions(conn)).items()):
        if part_day < day:
            await conn.execute(text(f"DROP TABLE {qualified}"))
            dropped.append(qualified)
    if dropped:
        log.info("event_partitions_dropped", count=len(dropped), before=day.isoformat())
    return dropped


async def maintain(engine: Any, days_ahead: int = DEFAULT_DAYS_AHEAD) -> list[str]:
    """Open a transaction on `engine` and ensure the partitions ahead."""
    async with engine.begin() as conn:
        return await ensure_event_partitions(conn, days_ahead=days_ahead)


async def ensure_at_startup(engine: Any) -> None:
    """Ensure the partitions when the app starts (then the periodic task supportlens.event_partitions)."""
    try:
        await maintain(engine)
    except Exception as exc:  # a missing table (migrations not run yet) must not stop startup
        log.warning("event_partitions_not_ensured", error=type(exc).__name__, detail=str(exc)[:200])
