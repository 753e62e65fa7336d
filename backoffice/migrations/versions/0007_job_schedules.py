"""Jobs: schedule overrides and their audit (placeholder, filled by the cron-management work).

Revision ID: 0007_job_schedules
Revises: 0006_nullable_amounts
"""

from collections.abc import Sequence

revision: str = "0007_job_schedules"
down_revision: str | None = "0006_nullable_amounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
