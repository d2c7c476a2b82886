"""security: reserved for the security domain's schema changes (none yet)

Revision ID: 0007_security
Revises: 0006_investigation
"""

from collections.abc import Sequence

revision: str = "0007_security"
down_revision: str | None = "0006_investigation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
