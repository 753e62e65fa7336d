"""Invoices (from Shoptet) and bank statements (Comgate payouts).

The invoice part (top) is filled by the Shoptet import; the bank statement part (below) by the
Comgate import, which marks invoices paid through `var_symbol`, `paid`, `paid_at`, `paid_amount`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice.schema import Base, ExactDecimal, ExactRate, UTCDateTime

# --- invoices (Shoptet import) -------------------------------------------------------------


class Invoice(Base):
    """A Shoptet invoice, upserted by its code; `paid*` belong to the bank matching, not the import."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    var_symbol: Mapped[str | None] = mapped_column(String(20), index=True)
    order_code: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    creation_time: Mapped[datetime] = mapped_column(UTCDateTime)
    tax_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_company: Mapped[str | None] = mapped_column(String(255))
    billing_method: Mapped[str | None] = mapped_column(String(128))
    total_with_vat: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_without_vat: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_vat: Mapped[Decimal] = mapped_column(ExactDecimal)
    exchange_rate: Mapped[Decimal] = mapped_column(ExactRate)
    is_valid: Mapped[bool] = mapped_column(Boolean)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_at: Mapped[date | None] = mapped_column(Date)
    paid_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    # SHA-256 of the imported content: a re-import compares this instead of every column and item.
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[InvoiceItem]] = relationship(
        back_populates="invoice", order_by="InvoiceItem.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        # The controlling report and the import read invoices by day and currency.
        Index("ix_invoices_currency_creation_time", "currency", "creation_time"),
    )


class InvoiceItem(Base):
    """One line of an invoice (product, shipping, billing fee...), in Shoptet's order."""

    __tablename__ = "invoice_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_type: Mapped[str] = mapped_column(String(32))
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    variant_name: Mapped[str | None] = mapped_column(String(255))
    # Null where Shoptet sends null (discount and coupon lines): its SDK declares these nullable.
    amount: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    unit: Mapped[str | None] = mapped_column(String(16))
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit_price_with_vat: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    price_with_vat: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    price_without_vat: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    price_vat: Mapped[Decimal | None] = mapped_column(ExactDecimal)

    invoice: Mapped[Invoice] = relationship(back_populates="items")

    __table_args__ = (UniqueConstraint("invoice_id", "position", name="uq_invoice_items_invoice_position"),)


# --- bank statements (Comgate import) ------------------------------------------------------

# Comgate row types 1 payment, 2 refund; 3 monthly fee and 4 other fees / chargebacks are "fee" lines.
STATEMENT_LINE_TYPES = ("payment", "refund", "fee")


class BankStatement(Base):
    """One Comgate payout (transfer) to a payout account; imported once, by its transfer id."""

    __tablename__ = "bank_statements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    transfer_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    account: Mapped[str] = mapped_column(String(64))
    account_outgoing: Mapped[str] = mapped_column(String(64))
    variable_symbol: Mapped[str] = mapped_column(String(32))
    # Sums of the lines (Comgate's summary row): confirmed, fees, and what reached the account.
    total_amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_fee: Mapped[Decimal] = mapped_column(ExactDecimal)
    total_transferred: Mapped[Decimal] = mapped_column(ExactDecimal)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lines: Mapped[list[BankStatementLine]] = relationship(
        back_populates="statement", order_by="BankStatementLine.position", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_bank_statements_date_currency", "transfer_date", "currency"),)


class BankStatementLine(Base):
    """A payment, refund or fee of a payout; a payment is matched to an invoice by variable symbol."""

    __tablename__ = "bank_statement_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statements.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    line_type: Mapped[str] = mapped_column(String(16))
    row_type: Mapped[int] = mapped_column(Integer)
    payment_id: Mapped[str | None] = mapped_column(String(64))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    variable_symbol: Mapped[str | None] = mapped_column(String(32), index=True)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    fee: Mapped[Decimal] = mapped_column(ExactDecimal)
    transferred: Mapped[Decimal] = mapped_column(ExactDecimal)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    method: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(255))
    # NULL on a payment = unmatched: stays visible until an invoice with its symbol arrives.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    statement: Mapped[BankStatement] = relationship(back_populates="lines")

    __table_args__ = (
        UniqueConstraint("statement_id", "position", name="uq_bank_statement_lines_statement_position"),
        CheckConstraint("line_type IN ('payment', 'refund', 'fee')", name="line_type"),
    )
