"""Invoices and bank statements (Shoptet and Comgate imports).

Revision ID: 0002_accounting
Revises: 0001_queue
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import backoffice.models.types  # noqa: F401

revision: str = "0002_accounting"
down_revision: str | None = "0001_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
