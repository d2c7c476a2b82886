"""scale: session_events partitioned by day on PostgreSQL

`session_events` becomes a table partitioned by range of `timestamp` (one
partition per UTC day, in schema `session_event_partitions`, plus a default partition), with
primary key (id, timestamp) because a partitioned table's unique keys must include the
partition key. The foreign key to user_sessions and every index are kept; existing rows are
copied over. Downgrade restores a plain table with primary key (id).

Revision ID: 0008_scale
Revises: 0007_security
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from alembic import op
from sqlalchemy import text

revision: str = "0008_scale"
down_revision: str | None = "0007_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "session_events"
OLD = "session_events_unpartitioned"
SCHEMA = "session_event_partitions"
PK = "pk_session_events"
FK = "fk_session_events_session_id_user_sessions"
DAYS_AHEAD = 7
DAYS_BACK = 2
MAX_DAYS_OF_EXISTING_DATA = 62  # older rows go to the default partition
# Search by name (`lower(customer_name) LIKE '%jane doe%'`) reads a trigram index, not the whole table.
NAME_TRGM_INDEX = "ix_user_sessions_customer_name_trgm"


def _bound(day: date) -> str:
    return datetime.combine(day, time(0), tzinfo=UTC).isoformat()


def _secondary_indexes(conn, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index of `table` except its primary key."""
    rows = conn.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = :t AND i.indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u', 'x') "
            " AND conrelid = (quote_ident(current_schema()) || '.' || :t)::regclass)"
        ),
        {"t": table},
    )
    return [(r[0], r[1]) for r in rows]


def _rename_indexes_free(conn, indexes: list[tuple[str, str]]) -> None:
    for name, _ in indexes:
        conn.execute(text(f'ALTER INDEX "{name}" RENAME TO "{name[:50]}_old"'))


def _recreate(conn, indexes: list[tuple[str, str]], table: str) -> None:
    for name, ddl in indexes:
        if " UNIQUE " in ddl.upper() and "timestamp" not in ddl:
            raise RuntimeError(f"unique index {name} cannot exist on the partitioned {table}")
        # a partitioned table's index reads "ON ONLY t"; build it (and its partitions') in full
        conn.execute(text(ddl.replace(" ON ONLY ", " ON ", 1)))


def upgrade() -> None:
    conn = op.get_bind()
    indexes = _secondary_indexes(conn, TABLE)
    conn.execute(text(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"'))
    conn.execute(text(f'ALTER TABLE "{OLD}" RENAME CONSTRAINT "{PK}" TO "{PK}_old"'))
    conn.execute(text(f'ALTER TABLE "{OLD}" RENAME CONSTRAINT "{FK}" TO "{FK[:55]}_old"'))
    _rename_indexes_free(conn, indexes)

    conn.execute(
        text(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS, '
            f'CONSTRAINT "{PK}" PRIMARY KEY (id, "timestamp"), '
            f'CONSTRAINT "{FK}" FOREIGN KEY (session_id) REFERENCES user_sessions (id) ON DELETE CASCADE'
            ') PARTITION BY RANGE ("timestamp")'
        )
    )
    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    conn.execute(text(f'CREATE TABLE "{SCHEMA}"."{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT'))

    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS_BACK)
    # (identifiers below are this module's constants; nothing comes from outside)
    oldest = conn.execute(text(f'SELECT min("timestamp") FROM "{OLD}"')).scalar()  # noqa: S608
    if oldest is not None:
        first = max(
            min(first, oldest.astimezone(UTC).date()), today - timedelta(days=MAX_DAYS_OF_EXISTING_DATA)
        )
    day = first
    while day <= today + timedelta(days=DAYS_AHEAD):
        conn.execute(
            text(
                f'CREATE TABLE "{SCHEMA}"."{TABLE}_p{day:%Y%m%d}" PARTITION OF "{TABLE}" '
                f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
            )
        )
        day += timedelta(days=1)

    conn.execute(text(f'INSERT INTO "{TABLE}" SELECT * FROM "{OLD}"'))  # noqa: S608
    conn.execute(text(f'DROP TABLE "{OLD}"'))
    _recreate(conn, indexes, TABLE)
    conn.execute(text(f'ANALYZE "{TABLE}"'))

    conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    conn.execute(
        text(f"CREATE INDEX {NAME_TRGM_INDEX} ON user_sessions USING gin (lower(customer_name) gin_trgm_ops)")
    )


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(text(f"DROP INDEX IF EXISTS {NAME_TRGM_INDEX}"))
    indexes = _secondary_indexes(conn, TABLE)
    conn.execute(text(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"'))
    conn.execute(text(f'ALTER TABLE "{OLD}" RENAME CONSTRAINT "{PK}" TO "{PK}_old"'))
    conn.execute(text(f'ALTER TABLE "{OLD}" RENAME CONSTRAINT "{FK}" TO "{FK[:55]}_old"'))
    _rename_indexes_free(conn, indexes)
    conn.execute(
        text(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS, '
            f'CONSTRAINT "{PK}" PRIMARY KEY (id), '
            f'CONSTRAINT "{FK}" FOREIGN KEY (session_id) REFERENCES user_sessions (id) ON DELETE CASCADE)'
        )
    )
    # (id) alone must be unique again: keep the earliest copy of an id seen on several days.
    conn.execute(
        text(f'INSERT INTO "{TABLE}" SELECT DISTINCT ON (id) * FROM "{OLD}" ORDER BY id, timestamp')  # noqa: S608
    )
    conn.execute(text(f'DROP TABLE "{OLD}" CASCADE'))
    conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    _recreate(conn, indexes, TABLE)
