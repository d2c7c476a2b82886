"""agents: the colour scheme each agent chose (light, dark, or system: follow the browser)

Revision ID: 0015_agent_theme
Revises: 0014_task_queue
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_agent_theme"
down_revision: str | None = "0014_task_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("theme", sa.String(length=8), server_default="system", nullable=False))


def downgrade() -> None:
    op.drop_column("agents", "theme")
