"""Queue: what the asyncio hot path needs in the schema: nothing.

Its one-statement lock (backoffice/queue/sql/lock_postgresql.sql) reads the existing partial
indexes ix_tasks_claim and ix_tasks_lock_expiry (tests/integration/test_hot_path_plan.py), and
its `lock_released` event needs no column. The revision stays so the chain 0008 → 0009 holds.

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
