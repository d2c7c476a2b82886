"""capture: reserved for the capture domain's schema changes (none yet)

Revision ID: 0003_capture
Revises: 0002_search
"""

from collections.abc import Sequence

revision: str = "0003_capture"
down_revision: str | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
