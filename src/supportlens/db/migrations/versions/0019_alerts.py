"""spike alerts: the admin's webhook, detector state per series, alerts and their deliveries

Revision ID: 0019_alerts
Revises: 0018_issue_grouping
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_alerts"
down_revision: str | None = "0018_issue_grouping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_webhook",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_alert_webhook_single_row")),
    )
    op.create_table(
        "spike_series",
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("issue_id", sa.BigInteger(), sa.ForeignKey("issues.id", ondelete="CASCADE"), nullable=True),
        sa.Column("page", sa.Text(), nullable=True),
        sa.Column("last_bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", postgresql.JSONB(), nullable=False),
    )
    op.create_table(
        "spike_alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("series_key", sa.String(600), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), sa.ForeignKey("issues.id", ondelete="CASCADE"), nullable=True),
        sa.Column("page", sa.Text(), nullable=True),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_buckets", sa.Integer(), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_spike_alerts_series_bucket", "spike_alerts", ["series_key", "bucket_start"], unique=True
    )
    op.create_index("ix_spike_alerts_raised_at", "spike_alerts", ["raised_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column(
            "alert_id", sa.BigInteger(), sa.ForeignKey("spike_alerts.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_alert_deliveries_status")
        ),
    )
    op.create_index("ix_alert_deliveries_status", "alert_deliveries", ["status", "created_at"])
    op.create_index("ix_alert_deliveries_dedup", "alert_deliveries", ["dedup_key"], unique=True)


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("spike_alerts")
    op.drop_table("spike_series")
    op.drop_table("alert_webhook")
