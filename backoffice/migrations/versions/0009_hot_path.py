"""Queue: what the asyncio hot path needs in the schema (placeholder).

Revision ID: 0009_hot_path
Revises: 0008_task_types
"""

from collections.abc import Sequence

revision: str = "0009_hot_path"
down_revision: str | None = "0008_task_types"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
