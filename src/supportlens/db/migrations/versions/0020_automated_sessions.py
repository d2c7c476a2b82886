"""user_sessions: automated traffic (why, for good) and whether a person has interacted yet

Revision ID: 0020_automated_sessions
Revises: 0019_alerts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_automated_sessions"
down_revision: str | None = "0019_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_sessions", sa.Column("automated", sa.String(length=16), nullable=True))
    op.add_column("user_sessions", sa.Column("human_interaction", sa.Boolean(), nullable=True))
    # The admin sites page counts a site's automated sessions of the last days: few rows, a small index.
    op.create_index(
        "ix_user_sessions_automated_site_start",
        "user_sessions",
        ["site_id", "session_start"],
        postgresql_where=sa.text("automated IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_user_sessions_automated_site_start", table_name="user_sessions")
    op.drop_column("user_sessions", "human_interaction")
    op.drop_column("user_sessions", "automated")
