"""mapping: identified-session index and per-IP distinct customer/browser counters

Revision ID: 0004_mapping
Revises: 0003_capture
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_mapping"
down_revision: str | None = "0003_capture"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mapping_identities",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("customer_email", sa.String(length=254), nullable=False),
        sa.Column("clarity_user_id", sa.String(length=64), nullable=False),
        sa.Column("ip_key", sa.String(length=32), nullable=True),
        sa.Column("session_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_end", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_mapping_identities_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "customer_email", name=op.f("pk_mapping_identities")),
    )
    with op.batch_alter_table("mapping_identities", schema=None) as batch_op:
        batch_op.create_index("ix_mapping_identities_clarity_user_id", ["clarity_user_id"], unique=False)
        batch_op.create_index(
            "ix_mapping_identities_ip_key_session_start", ["ip_key", "session_start"], unique=False
        )
        batch_op.create_index("ix_mapping_identities_customer_email", ["customer_email"], unique=False)

    op.create_table(
        "mapping_ip_customers",
        sa.Column("ip_key", sa.String(length=32), nullable=False),
        sa.Column("customer_key", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("ip_key", "customer_key", name=op.f("pk_mapping_ip_customers")),
    )
    op.create_table(
        "mapping_ip_devices",
        sa.Column("ip_key", sa.String(length=32), nullable=False),
        sa.Column("clarity_user_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("ip_key", "clarity_user_id", name=op.f("pk_mapping_ip_devices")),
    )


def downgrade() -> None:
    op.drop_table("mapping_ip_devices")
    op.drop_table("mapping_ip_customers")
    with op.batch_alter_table("mapping_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_mapping_identities_customer_email")
        batch_op.drop_index("ix_mapping_identities_ip_key_session_start")
        batch_op.drop_index("ix_mapping_identities_clarity_user_id")
    op.drop_table("mapping_identities")
