"""mapping: reserved for the mapping domain's schema changes (none yet)

Revision ID: 0004_mapping
Revises: 0003_capture
"""

from collections.abc import Sequence

revision: str = "0004_mapping"
down_revision: str | None = "0003_capture"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
