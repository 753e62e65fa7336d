"""Transport boxes and picking-list bookkeeping.

Revision ID: 0003_warehouse
Revises: 0002_accounting
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import backoffice.models.types  # noqa: F401

revision: str = "0003_warehouse"
down_revision: str | None = "0002_accounting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
