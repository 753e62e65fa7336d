"""Invoices and bank statements (Shoptet and Comgate imports).

Revision ID: 0002_accounting
Revises: 0001_queue
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backoffice.schema

revision: str = "0002_accounting"
down_revision: str | None = "0001_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _invoices() -> None:
    exact = backoffice.schema.ExactDecimal
    utc = backoffice.schema.UTCDateTime
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("var_symbol", sa.String(length=20), nullable=True),
        sa.Column("order_code", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("creation_time", utc(timezone=True), nullable=False),
        sa.Column("tax_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("customer_name", sa.String(length=255), nullable=True),
        sa.Column("customer_company", sa.String(length=255), nullable=True),
        sa.Column("billing_method", sa.String(length=128), nullable=True),
        sa.Column("total_with_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("total_without_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("total_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("exchange_rate", backoffice.schema.ExactRate(precision=18, scale=8), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("paid_at", sa.Date(), nullable=True),
        sa.Column("paid_amount", exact(precision=18, scale=4), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("imported_at", utc(timezone=True), nullable=False),
        sa.Column("updated_at", utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("code", name=op.f("uq_invoices_code")),
    )
    op.create_index(
        "ix_invoices_currency_creation_time", "invoices", ["currency", "creation_time"], unique=False
    )
    op.create_index(op.f("ix_invoices_var_symbol"), "invoices", ["var_symbol"], unique=False)
    op.create_table(
        "invoice_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_type", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("variant_name", sa.String(length=255), nullable=True),
        sa.Column("amount", exact(precision=18, scale=4), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("vat_rate", exact(precision=18, scale=4), nullable=False),
        sa.Column("unit_price_with_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("price_with_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("price_without_vat", exact(precision=18, scale=4), nullable=False),
        sa.Column("price_vat", exact(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_items_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_items")),
        sa.UniqueConstraint("invoice_id", "position", name="uq_invoice_items_invoice_position"),
    )


def _bank_statements() -> None:
    exact = backoffice.schema.ExactDecimal
    utc = backoffice.schema.UTCDateTime
    op.create_table(
        "bank_statements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("transfer_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("account_outgoing", sa.String(length=64), nullable=False),
        sa.Column("variable_symbol", sa.String(length=32), nullable=False),
        sa.Column("total_amount", exact(precision=18, scale=4), nullable=False),
        sa.Column("total_fee", exact(precision=18, scale=4), nullable=False),
        sa.Column("total_transferred", exact(precision=18, scale=4), nullable=False),
        sa.Column("imported_at", utc(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statements")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_bank_statements_transfer_id")),
    )
    op.create_index(
        "ix_bank_statements_date_currency", "bank_statements", ["transfer_date", "currency"], unique=False
    )
    op.create_table(
        "bank_statement_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("row_type", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("variable_symbol", sa.String(length=32), nullable=True),
        sa.Column("amount", exact(precision=18, scale=4), nullable=False),
        sa.Column("fee", exact(precision=18, scale=4), nullable=False),
        sa.Column("transferred", exact(precision=18, scale=4), nullable=False),
        sa.Column("paid_at", utc(timezone=True), nullable=True),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("matched_at", utc(timezone=True), nullable=True),
        sa.CheckConstraint(
            "line_type IN ('payment', 'refund', 'fee')", name=op.f("ck_bank_statement_lines_line_type")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_bank_statement_lines_invoice_id_invoices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["bank_statements.id"],
            name=op.f("fk_bank_statement_lines_statement_id_bank_statements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statement_lines")),
        sa.UniqueConstraint("statement_id", "position", name="uq_bank_statement_lines_statement_position"),
    )
    op.create_index(
        op.f("ix_bank_statement_lines_invoice_id"), "bank_statement_lines", ["invoice_id"], unique=False
    )
    op.create_index(
        op.f("ix_bank_statement_lines_variable_symbol"),
        "bank_statement_lines",
        ["variable_symbol"],
        unique=False,
    )


def upgrade() -> None:
    _invoices()
    # --- bank statements (Comgate import) below -------------------------------------------
    _bank_statements()


def downgrade() -> None:
    # --- bank statements (Comgate import) first, in reverse -------------------------------
    op.drop_index(op.f("ix_bank_statement_lines_variable_symbol"), table_name="bank_statement_lines")
    op.drop_index(op.f("ix_bank_statement_lines_invoice_id"), table_name="bank_statement_lines")
    op.drop_table("bank_statement_lines")
    op.drop_index("ix_bank_statements_date_currency", table_name="bank_statements")
    op.drop_table("bank_statements")
    op.drop_table("invoice_items")
    op.drop_index(op.f("ix_invoices_var_symbol"), table_name="invoices")
    op.drop_index("ix_invoices_currency_creation_time", table_name="invoices")
    op.drop_table("invoices")
