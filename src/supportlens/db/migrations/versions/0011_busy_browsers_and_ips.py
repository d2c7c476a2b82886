"""mapping: browsers and addresses seen in more sessions than people make carry no evidence

A browser or a client IP that passes its session cap (mapping.evidence.MAX_BROWSER_SESSIONS,
MAX_IP_SESSIONS: a kiosk, an uptime monitor, a bot re-using one Clarity userId or one address) is
written here once. From then on the engine neither reads its history nor re-scores it, so no single
browser or address can make every batch cost in proportion to it.

Revision ID: 0011_busy_browsers_and_ips
Revises: 0010_search_history_unique
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_busy_browsers_and_ips"
down_revision: str | None = "0010_search_history_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mapping_busy_browsers",
        sa.Column("clarity_user_id", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("clarity_user_id", name=op.f("pk_mapping_busy_browsers")),
    )
    op.create_table(
        "mapping_busy_ips",
        sa.Column("ip_key", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ip_key", name=op.f("pk_mapping_busy_ips")),
    )


def downgrade() -> None:
    op.drop_table("mapping_busy_ips")
    op.drop_table("mapping_busy_browsers")
