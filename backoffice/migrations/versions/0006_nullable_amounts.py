"""Invoice lines: amount and prices may be null (Shoptet's discount and coupon lines).

Revision ID: 0006_nullable_amounts
Revises: 0005_picking_delivery
"""

from collections.abc import Sequence

from alembic import op

import backoffice.schema

revision: str = "0006_nullable_amounts"
down_revision: str | None = "0005_picking_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Shoptet's item `amount` and `itemPrice`/`unitPrice` values are nullable (shoptet/api-sdk
# src/Component/Entity/InvoiceItem.php, ItemPrice.php); the VAT rate is not.
COLUMNS = ("amount", "unit_price_with_vat", "price_with_vat", "price_without_vat", "price_vat")


def _nullable(nullable: bool) -> None:
    # SQLite cannot alter a column's nullability: batch mode (env.py) rebuilds the table there.
    with op.batch_alter_table("invoice_items") as batch:
        for column in COLUMNS:
            batch.alter_column(
                column, existing_type=backoffice.schema.ExactDecimal(precision=18, scale=4), nullable=nullable
            )


def upgrade() -> None:
    _nullable(True)


def downgrade() -> None:
    # A null line cannot go back under NOT NULL; 0 is what the old import stored for a missing value.
    for column in COLUMNS:
        op.execute(f"UPDATE invoice_items SET {column} = '0' WHERE {column} IS NULL")
    _nullable(False)
