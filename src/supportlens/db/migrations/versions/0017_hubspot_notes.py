"""hubspot_note_links: the HubSpot note made from a session (at a moment, for a ticket)

Revision ID: 0017_hubspot_notes
Revises: 0016_mapping_labels
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_hubspot_notes"
down_revision: str | None = "0016_mapping_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hubspot_note_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=True),
        sa.Column("at_ms", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.String(length=32), nullable=False),
        sa.Column("customer_ref", sa.String(length=64), nullable=False),
        sa.Column("note_id", sa.String(length=32), nullable=True),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("comment_sha256", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name="fk_hubspot_note_links_session_id_user_sessions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_hubspot_note_links_agent_id_agents", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_hubspot_note_links"),
        sa.UniqueConstraint(
            "session_id",
            "ticket_id",
            "at_ms",
            name="uq_hubspot_note_links_key",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index("ix_hubspot_note_links_ticket_id", "hubspot_note_links", ["ticket_id"])
    op.create_index("ix_hubspot_note_links_customer_ref", "hubspot_note_links", ["customer_ref"])


def downgrade() -> None:
    op.drop_table("hubspot_note_links")
