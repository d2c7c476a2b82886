"""capture: navigation and Clarity page counters on user_sessions

Revision ID: 0003_capture
Revises: 0002_search
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_capture"
down_revision: str | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("navigation_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("page_num_max", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_column("page_num_max")
        batch_op.drop_column("navigation_count")
