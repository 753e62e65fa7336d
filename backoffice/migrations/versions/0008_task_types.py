"""Queue: task-type definitions, error kinds, result callbacks (the outbox), retention index.

Revision ID: 0008_task_types
Revises: 0007_job_schedules
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import backoffice.schema

revision: str = "0008_task_types"
down_revision: str | None = "0007_job_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
FINISHED = "status IN ('completed', 'failed')"


def upgrade() -> None:
    # Nullable columns: a plain ADD COLUMN on both databases, no table rewrite.
    op.add_column("tasks", sa.Column("last_error_kind", sa.String(length=16), nullable=True))
    op.add_column(
        "tasks", sa.Column("first_locked_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("tasks", sa.Column("callback_url", sa.String(length=2048), nullable=True))
    op.create_index(
        "ix_tasks_finished",
        "tasks",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    op.create_table(
        "task_types",
        sa.Column("task_type", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("retry_backoff_seconds", sa.Float(), nullable=True),
        sa.Column("data_schema", JSON, nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("task_type", name=op.f("pk_task_types")),
    )
    op.create_table(
        "callback_deliveries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_callback_deliveries_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_callback_deliveries_delivery_id")),
    )
    op.create_index(
        "ix_callback_deliveries_due",
        "callback_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_callback_deliveries_task", "callback_deliveries", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_callback_deliveries_task", table_name="callback_deliveries")
    op.drop_index(
        "ix_callback_deliveries_due",
        table_name="callback_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_table("callback_deliveries")
    op.drop_table("task_types")
    op.drop_index(
        "ix_tasks_finished",
        table_name="tasks",
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    # batch mode: SQLite drops columns by copying the table.
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("callback_url")
        batch_op.drop_column("first_locked_at")
        batch_op.drop_column("last_error_kind")
