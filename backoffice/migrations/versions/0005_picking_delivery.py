"""Picking claims: the `undelivered` status (PDF written, the printer refused it).

Revision ID: 0005_picking_delivery
Revises: 0004_sessions
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_picking_delivery"
down_revision: str | None = "0004_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("claimed", "printed", "unmoved", "done", "check", "skipped")
NEW = ("claimed", "printed", "undelivered", "unmoved", "done", "check", "skipped")


def _status_check(statuses: tuple[str, ...]) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode (env.py) rebuilds the table there.
    with op.batch_alter_table("picked_orders") as batch:
        batch.drop_constraint(op.f("ck_picked_orders_status"), type_="check")
        batch.create_check_constraint("status", "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")")


def upgrade() -> None:
    _status_check(NEW)


def downgrade() -> None:
    # Undelivered orders were never on paper: give them back to a fresh claim.
    op.execute("UPDATE picked_orders SET status = 'skipped' WHERE status = 'undelivered'")
    _status_check(OLD)
