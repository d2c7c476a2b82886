"""scale: reserved for the scale domain's schema changes (none yet)

Revision ID: 0008_scale
Revises: 0007_security
"""

from collections.abc import Sequence

revision: str = "0008_scale"
down_revision: str | None = "0007_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
