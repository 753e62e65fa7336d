"""Dashboard sessions kept on the server (sign-out and key revocation end them).

Revision ID: 0004_sessions
Revises: 0003_warehouse
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backoffice.schema

revision: str = "0004_sessions"
down_revision: str | None = "0003_warehouse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index("ix_dashboard_sessions_key_name", "dashboard_sessions", ["key_name"], unique=False)
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_key_name", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
