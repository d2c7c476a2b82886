"""investigation: conversion goals set by an admin

Revision ID: 0006_investigation
Revises: 0005_clarity
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_investigation"
down_revision: str | None = "0005_clarity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversion_goals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_by_agent_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_agent_id"],
            ["agents.id"],
            name="fk_conversion_goals_created_by_agent_id_agents",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversion_goals"),
        sa.UniqueConstraint("kind", "value", name="uq_conversion_goals_kind_value"),
    )


def downgrade() -> None:
    op.drop_table("conversion_goals")
