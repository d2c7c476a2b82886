"""investigation: reserved for the investigation domain's schema changes (none yet)

Revision ID: 0006_investigation
Revises: 0005_clarity
"""

from collections.abc import Sequence

revision: str = "0006_investigation"
down_revision: str | None = "0005_clarity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
