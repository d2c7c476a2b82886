"""issues: events waiting to be grouped, and the failed-transfer count last seen on an issue's page

`issue_pending_events` holds one row per stored error, rage click or dead click that grouping has not
taken yet: ingest inserts it in the batch's transaction, the grouping job deletes it in the
transaction that groups the event (so each event is grouped exactly once, and a crashed job leaves
its rows for the next). `issues.failed_transfers` is the number of failed Dwolla transfers within 30
minutes of an occurrence, as counted when an agent last opened the issue (the list shows it).

Revision ID: 0018_issue_grouping
Revises: 0017_hubspot_notes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_issue_grouping"
down_revision: str | None = "0017_hubspot_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "issue_pending_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_issue_pending_events_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_issue_pending_events")),
    )
    op.create_index("ix_issue_pending_events_session_id", "issue_pending_events", ["session_id"])
    op.add_column("issues", sa.Column("failed_transfers", sa.Integer(), nullable=True))
    op.add_column("issues", sa.Column("failed_transfers_checked_at", TZ, nullable=True))


def downgrade() -> None:
    op.drop_column("issues", "failed_transfers_checked_at")
    op.drop_column("issues", "failed_transfers")
    op.drop_table("issue_pending_events")
