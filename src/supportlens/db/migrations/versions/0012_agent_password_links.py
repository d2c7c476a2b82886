"""auth: one-time set-password links for invited agents (only a hash of each link is stored)

Revision ID: 0012_agent_password_links
Revises: 0011_busy_browsers_and_ips
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_agent_password_links"
down_revision: str | None = "0011_busy_browsers_and_ips"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_password_links",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_password_links_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["agents.id"],
            name=op.f("fk_agent_password_links_created_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_password_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_password_links_token_hash")),
    )
    op.create_index("ix_agent_password_links_agent_id", "agent_password_links", ["agent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_agent_password_links_agent_id", table_name="agent_password_links")
    op.drop_table("agent_password_links")
