"""search history: one row per agent and query, enforced by a unique index

An agent's search is recorded with one `INSERT ... ON CONFLICT (agent_id, normalized_query) DO
UPDATE`, which moves a repeated query to the top without a delete-then-insert (and without a
transaction-wide lock to keep two of them apart). Duplicates left by earlier races are removed
first, keeping the newest.

Revision ID: 0010_search_history_unique
Revises: 0009_session_links
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_search_history_unique"
down_revision: str | None = "0009_session_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "search_history"
INDEX = "uq_search_history_agent_id_normalized_query"


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM search_history WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER ("
            "PARTITION BY agent_id, normalized_query ORDER BY created_at DESC, id DESC) AS n "
            "FROM search_history) AS ranked WHERE n > 1)"
        )
    )
    op.create_index(INDEX, TABLE, ["agent_id", "normalized_query"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
