"""clarity: call budgets, insight snapshots, connection status; job leases

Revision ID: 0005_clarity
Revises: 0004_mapping
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_clarity"
down_revision: str | None = "0004_mapping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "clarity_call_budget",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("api", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls_used", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "api", "day", name=op.f("pk_clarity_call_budget")),
    )
    op.create_table(
        "clarity_snapshots",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("num_of_days", sa.Integer(), nullable=False),
        sa.Column("dimensions", JSON, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("metric_count", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clarity_snapshots")),
    )
    op.create_index(
        "ix_clarity_snapshots_project_id_pulled_at", "clarity_snapshots", ["project_id", "pulled_at"]
    )
    op.create_table(
        "clarity_connection",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recordings_status", sa.String(length=24), nullable=True),
        sa.Column("recordings_last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recordings_last_error", sa.Text(), nullable=True),
        sa.Column("recordings_matched", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_clarity_connection")),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_holder", sa.String(length=100), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("clarity_connection")
    op.drop_index("ix_clarity_snapshots_project_id_pulled_at", table_name="clarity_snapshots")
    op.drop_table("clarity_snapshots")
    op.drop_table("clarity_call_budget")
