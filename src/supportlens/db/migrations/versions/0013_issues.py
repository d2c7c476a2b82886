"""issues: error, rage-click and dead-click fingerprints grouped into issues

`issues` holds one row per fingerprint with its counts and status; `issue_occurrences` one row
per grouped event (keyed by the event's id, so grouping is idempotent); `issue_buckets` the
counts per issue, page template and five minutes; `issue_sessions` the sessions each issue was
seen in; `issue_status_changes` every status change, by an agent or by the system.

Revision ID: 0013_issues
Revises: 0012_agent_password_links
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_issues"
down_revision: str | None = "0012_agent_password_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
JSON = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("page", sa.Text(), nullable=False),
        sa.Column("element", sa.Text(), nullable=False),
        sa.Column("frames", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("event_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("session_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status_changed_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'acknowledged', 'resolved', 'regressed')", name=op.f("ck_issues_status")
        ),
        sa.CheckConstraint("kind IN ('error', 'rage_click', 'dead_click')", name=op.f("ck_issues_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_issues_fingerprint")),
    )
    op.create_index("ix_issues_last_seen", "issues", ["last_seen"])
    op.create_index("ix_issues_status_last_seen", "issues", ["status", "last_seen"])

    op.create_table(
        "issue_occurrences",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("page", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_occurrences_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_issue_occurrences_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_issue_occurrences")),
    )
    op.create_index(
        "ix_issue_occurrences_issue_id_occurred_at", "issue_occurrences", ["issue_id", "occurred_at"]
    )
    op.create_index("ix_issue_occurrences_session_id", "issue_occurrences", ["session_id"])

    op.create_table(
        "issue_buckets",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("page", sa.Text(), nullable=False),
        sa.Column("bucket_start", TZ, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_buckets_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", "page", "bucket_start", name=op.f("pk_issue_buckets")),
    )
    op.create_index("ix_issue_buckets_page_bucket_start", "issue_buckets", ["page", "bucket_start"])

    op.create_table(
        "issue_sessions",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_sessions_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_issue_sessions_session_id_user_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", "session_id", name=op.f("pk_issue_sessions")),
    )
    op.create_index("ix_issue_sessions_session_id", "issue_sessions", ["session_id"])

    op.create_table(
        "issue_status_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_issue_status_changes_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_status_changes_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_status_changes")),
    )
    op.create_index(
        "ix_issue_status_changes_issue_id_changed_at", "issue_status_changes", ["issue_id", "changed_at"]
    )


def downgrade() -> None:
    op.drop_table("issue_status_changes")
    op.drop_table("issue_sessions")
    op.drop_table("issue_buckets")
    op.drop_table("issue_occurrences")
    op.drop_table("issues")
