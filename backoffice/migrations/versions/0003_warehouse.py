"""Transport boxes and picking-list bookkeeping.

Revision ID: 0003_warehouse
Revises: 0002_accounting
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backoffice.schema

revision: str = "0003_warehouse"
down_revision: str | None = "0002_accounting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "picked_orders",
        sa.Column("order_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("shipping", sa.String(length=255), nullable=True),
        sa.Column("printed_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pdf_path", sa.Text(), nullable=True),
        sa.Column("finished_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("times_printed", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('claimed', 'printed', 'unmoved', 'done', 'check', 'skipped')",
            name=op.f("ck_picked_orders_status"),
        ),
        sa.PrimaryKeyConstraint("order_code", name=op.f("pk_picked_orders")),
    )
    op.create_index("ix_picked_orders_run", "picked_orders", ["run_id"], unique=False)
    op.create_table(
        "transport_boxes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("created_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", backoffice.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('New', 'Opened', 'InTransit', 'Received', 'InSwap', 'Stocked', 'Closed', 'Error')",
            name=op.f("ck_transport_boxes_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transport_boxes")),
        sa.UniqueConstraint("code", name=op.f("uq_transport_boxes_code")),
    )
    op.create_index("ix_transport_boxes_state", "transport_boxes", ["state", "updated_at"], unique=False)
    op.create_table(
        "transport_box_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("movement_state", sa.String(length=16), nullable=False),
        sa.Column("sent_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stocked_at", backoffice.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "movement_state IN ('pending', 'sent', 'stocked', 'unknown')",
            name=op.f("ck_transport_box_items_movement_state"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transport_box_items_amount_positive")),
        sa.ForeignKeyConstraint(
            ["box_id"],
            ["transport_boxes.id"],
            name=op.f("fk_transport_box_items_box_id_transport_boxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transport_box_items")),
        sa.UniqueConstraint("box_id", "product_code", name="uq_transport_box_items_box_product"),
    )


def downgrade() -> None:
    op.drop_table("transport_box_items")
    op.drop_index("ix_transport_boxes_state", table_name="transport_boxes")
    op.drop_table("transport_boxes")
    op.drop_index("ix_picked_orders_run", table_name="picked_orders")
    op.drop_table("picked_orders")
