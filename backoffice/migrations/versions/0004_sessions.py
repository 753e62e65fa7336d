"""Dashboard sessions kept on the server (sign-out and key revocation end them).

Revision ID: 0004_sessions
Revises: 0003_warehouse
"""

from collections.abc import Sequence

revision: str = "0004_sessions"
down_revision: str | None = "0003_warehouse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in by the sessions change


def downgrade() -> None:
    pass
