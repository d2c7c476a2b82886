"""clarity: reserved for the clarity domain's schema changes (none yet)

Revision ID: 0005_clarity
Revises: 0004_mapping
"""

from collections.abc import Sequence

revision: str = "0005_clarity"
down_revision: str | None = "0004_mapping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
