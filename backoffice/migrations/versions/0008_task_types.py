"""Queue: task-type definitions, error kinds, result callbacks (placeholder, filled by the seed-features work).

Revision ID: 0008_task_types
Revises: 0007_job_schedules
"""

from collections.abc import Sequence

revision: str = "0008_task_types"
down_revision: str | None = "0007_job_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
