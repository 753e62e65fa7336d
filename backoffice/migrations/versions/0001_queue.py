"""Task queue, audit events, function keys and the recurring jobs' Enabled record.

Revision ID: 0001_queue
Revises:
Create Date: 2026-11-28 12:37:16.636965
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import backoffice.schema

revision: str = "0001_queue"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "task_types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoked_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('consumer', 'operator', 'admin')", name=op.f("ck_api_keys_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "recurring_jobs",
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_recurring_jobs")),
    )
    op.create_table(
        "task_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.create_index("ix_task_events_event_at", ["event", "at"], unique=False)
        batch_op.create_index("ix_task_events_task", ["task_id", "id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_type", sa.String(length=128), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("not_before", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("available_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lock_date", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=128), nullable=True),
        sa.Column("lock_token", sa.Uuid(), nullable=True),
        sa.Column("completed_date", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=128), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'locked', 'expired', 'completed', 'failed')",
            name=op.f("ck_tasks_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("task_type", "idempotency_key", name="uq_tasks_type_idempotency_key"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_claim",
            ["task_type", "priority", "available_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('pending', 'expired')"),
            sqlite_where=sa.text("status IN ('pending', 'expired')"),
        )
        batch_op.create_index("ix_tasks_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_tasks_lock_expiry",
            ["task_type", "locked_until"],
            unique=False,
            postgresql_where=sa.text("status = 'locked'"),
            sqlite_where=sa.text("status = 'locked'"),
        )
        batch_op.create_index("ix_tasks_type_status", ["task_type", "status"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_type_status")
        batch_op.drop_index(
            "ix_tasks_lock_expiry",
            postgresql_where=sa.text("status = 'locked'"),
            sqlite_where=sa.text("status = 'locked'"),
        )
        batch_op.drop_index("ix_tasks_created")
        batch_op.drop_index(
            "ix_tasks_claim",
            postgresql_where=sa.text("status IN ('pending', 'expired')"),
            sqlite_where=sa.text("status IN ('pending', 'expired')"),
        )

    op.drop_table("tasks")
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.drop_index("ix_task_events_task")
        batch_op.drop_index("ix_task_events_event_at")

    op.drop_table("task_events")
    op.drop_table("recurring_jobs")
    op.drop_table("api_keys")
