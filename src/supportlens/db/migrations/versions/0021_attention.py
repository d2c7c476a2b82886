"""attention: Dwolla webhook events (stored once, by event id) and the "Needs attention" cases

Revision ID: 0021_attention
Revises: 0020_automated_sessions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_attention"
down_revision: str | None = "0020_automated_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dwolla_webhook_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("customer_dwolla_id", sa.String(length=64), nullable=True),
        sa.Column("created", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("processed_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_dwolla_webhook_events")),
    )
    op.create_index(
        op.f("ix_dwolla_webhook_events_customer_dwolla_id"), "dwolla_webhook_events", ["customer_dwolla_id"]
    )
    op.create_index(op.f("ix_dwolla_webhook_events_received_at"), "dwolla_webhook_events", ["received_at"])
    op.create_table(
        "attention_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_dwolla_id", sa.String(length=64), nullable=True),
        sa.Column("customer_email", sa.String(length=320), nullable=True),
        sa.Column("customer_name", sa.String(length=200), nullable=True),
        sa.Column("amount", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("failure_code", sa.String(length=8), nullable=True),
        sa.Column("failure_description", sa.String(length=200), nullable=True),
        sa.Column("failed_at", TZ, nullable=False),
        sa.Column("moment_session_id", sa.Uuid(), nullable=True),
        sa.Column("moment_kind", sa.String(length=16), nullable=True),
        sa.Column("moment_at", TZ, nullable=True),
        sa.Column("moment_offset_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=8), server_default=sa.text("'open'"), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("taken_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["agents.id"],
            name=op.f("fk_attention_cases_assignee_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attention_cases")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_attention_cases_transfer_id")),
    )
    op.create_index("ix_attention_cases_status_created_at", "attention_cases", ["status", "created_at"])
    op.create_index("ix_attention_cases_customer_email", "attention_cases", ["customer_email"])


def downgrade() -> None:
    op.drop_table("attention_cases")
    op.drop_table("dwolla_webhook_events")
