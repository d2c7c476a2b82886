"""session_customer_mapping: what the engine said before an agent decided (labels for calibration)

Revision ID: 0016_mapping_labels
Revises: 0015_agent_theme
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_mapping_labels"
down_revision: str | None = "0015_agent_theme"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("session_customer_mapping", sa.Column("auto_method", sa.String(length=50), nullable=True))
    op.add_column("session_customer_mapping", sa.Column("auto_confidence", sa.Float(), nullable=True))
    op.add_column(
        "session_customer_mapping", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Decisions made before this revision: what the engine had said is lost (marked "unknown", so they
    # are not read as labels); when they were made is the row's last update.
    op.execute(
        "UPDATE session_customer_mapping SET decided_at = updated_at, auto_method = 'unknown' "
        "WHERE manual_decision IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("session_customer_mapping", "decided_at")
    op.drop_column("session_customer_mapping", "auto_confidence")
    op.drop_column("session_customer_mapping", "auto_method")
