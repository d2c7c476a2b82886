"""session links: each customer link carries its session's start, for the customer's sessions list

`session_customer_mapping.session_start` is a copy of `user_sessions.session_start`, kept by
triggers: filled from the session whenever a link is written, and
updated when the session's start moves (an earlier event arrives later). With the index
(customer_email, session_start, session_id) a page of a customer's sessions, newest first, reads
a page of index entries instead of every link of that customer. An index on
(lower(customer_email), session_start) serves the sessions the site named with that e-mail.

Revision ID: 0009_session_links
Revises: 0008_scale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_session_links"
down_revision: str | None = "0008_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "session_customer_mapping"
INDEX = "ix_session_customer_mapping_customer_email_session_start"
NAMED_INDEX = "ix_user_sessions_lower_customer_email_session_start"
FILL_TRIGGER = "trg_session_customer_mapping_session_start"
SYNC_TRIGGER = "trg_user_sessions_session_start_to_links"

PG_UP = [
    """
    CREATE FUNCTION session_customer_mapping_fill_start() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.session_start := (SELECT s.session_start FROM user_sessions s WHERE s.id = NEW.session_id);
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE TRIGGER {FILL_TRIGGER} BEFORE INSERT OR UPDATE OF session_id, session_start ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION session_customer_mapping_fill_start()
    """,
    """
    CREATE FUNCTION user_sessions_start_to_links() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE session_customer_mapping SET session_start = NEW.session_start WHERE session_id = NEW.id;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE TRIGGER {SYNC_TRIGGER} AFTER UPDATE OF session_start ON user_sessions
    FOR EACH ROW WHEN (OLD.session_start IS DISTINCT FROM NEW.session_start)
    EXECUTE FUNCTION user_sessions_start_to_links()
    """,
    f"CREATE INDEX {NAMED_INDEX} ON user_sessions (lower(customer_email), session_start)",
    # statistics for the new expression index (the planner otherwise guesses how many sessions match)
    "ANALYZE user_sessions",
    f"ANALYZE {TABLE}",
]
PG_DOWN = [
    f"DROP INDEX IF EXISTS {NAMED_INDEX}",
    f"DROP TRIGGER IF EXISTS {SYNC_TRIGGER} ON user_sessions",
    "DROP FUNCTION IF EXISTS user_sessions_start_to_links()",
    f"DROP TRIGGER IF EXISTS {FILL_TRIGGER} ON {TABLE}",
    "DROP FUNCTION IF EXISTS session_customer_mapping_fill_start()",
]


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("session_start", sa.DateTime(timezone=True), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE session_customer_mapping SET session_start = (SELECT s.session_start "
            "FROM user_sessions s WHERE s.id = session_customer_mapping.session_id)"
        )
    )
    op.create_index(INDEX, TABLE, ["customer_email", "session_start", "session_id"])
    for statement in PG_UP:
        conn.execute(sa.text(statement))


def downgrade() -> None:
    conn = op.get_bind()
    for statement in PG_DOWN:
        conn.execute(sa.text(statement))
    op.drop_index(INDEX, table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("session_start")
