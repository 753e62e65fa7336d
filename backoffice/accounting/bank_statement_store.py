"""Bank statements: store each Comgate payout once, match its payments to invoices, read them back.

Idempotence: a statement is keyed by Comgate's transfer id (unique), a line by its position in the
payout, and a payment is matched only while its `invoice_id` is NULL, so a re-run or two overlapping
runs never store a payout twice nor add a payment to an invoice's `paid_amount` twice. The invoice
is updated by one statement that adds to `paid_amount` where it lies (never read, then written),
so two overlapping runs paying into one invoice lose neither payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from backoffice.accounting.models import BankStatement, BankStatementLine, Invoice
from backoffice.calendar import local_date
from backoffice.schema import exact_add


@dataclass(frozen=True)
class NewLine:
    """A line to store: a payment, a refund or a fee (Comgate `row_type` 1-4)."""

    line_type: str
    row_type: int
    payment_id: str | None
    ref_id: str | None
    variable_symbol: str | None
    amount: Decimal
    fee: Decimal
    transferred: Decimal
    paid_at: datetime | None
    method: str | None
    label: str | None


@dataclass(frozen=True)
class NewStatement:
    """A payout to store, with its lines in Comgate's order."""

    transfer_id: int
    transfer_date: date
    currency: str
    account: str
    account_outgoing: str
    variable_symbol: str
    total_amount: Decimal
    total_fee: Decimal
    total_transferred: Decimal
    lines: tuple[NewLine, ...]


@dataclass(frozen=True)
class StatementLineRecord:
    """A stored line, with the invoice it was matched to (None = unmatched)."""

    transfer_id: int
    position: int
    line_type: str
    row_type: int
    payment_id: str | None
    ref_id: str | None
    variable_symbol: str | None
    amount: Decimal
    fee: Decimal
    transferred: Decimal
    paid_at: datetime | None
    invoice_id: int | None
    invoice_code: str | None


class BankStatementStore:
    """Every query of the bank statements."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert_if_new(self, statement: NewStatement, now: datetime) -> bool:
        """Store `statement` with its lines unless its transfer id is stored already; True if stored."""
        values = {k: v for k, v in vars(statement).items() if k != "lines"}
        try:
            with self.engine.begin() as conn:
                exists = conn.execute(
                    select(BankStatement.id).where(BankStatement.transfer_id == statement.transfer_id)
                ).first()
                if exists is not None:
                    return False
                statement_id = conn.execute(
                    insert(BankStatement).values(**values, imported_at=now).returning(BankStatement.id)
                ).scalar_one()
                if statement.lines:
                    conn.execute(
                        insert(BankStatementLine),
                        [
                            {**vars(line), "statement_id": statement_id, "position": position}
                            for position, line in enumerate(statement.lines, start=1)
                        ],
                    )
        except IntegrityError:
            # An overlapping run stored the same transfer between our check and our insert.
            return False
        return True

    def match_payments(self, transfer_ids: Sequence[int], now: datetime) -> int:
        """Match the unmatched payments of these payouts to invoices; returns how many matched now.

        A payment matches the invoice of the payout's currency whose `var_symbol` is the payer's
        variable symbol, else whose `order_code` is the payment's refId (the e-shop's order id).
        The invoice becomes paid on the payment's date (Prague), and its `paid_amount` grows.
        """
        matched = 0
        with self.engine.begin() as conn:
            lines = conn.execute(
                select(
                    BankStatementLine.id,
                    BankStatementLine.variable_symbol,
                    BankStatementLine.ref_id,
                    BankStatementLine.amount,
                    BankStatementLine.paid_at,
                    BankStatement.currency,
                    BankStatement.transfer_date,
                )
                .join(BankStatement)
                .where(
                    BankStatement.transfer_id.in_(transfer_ids),
                    BankStatementLine.line_type == "payment",
                    BankStatementLine.invoice_id.is_(None),
                )
                .order_by(BankStatementLine.id)
            ).all()
            for line in lines:
                invoice_id = self._invoice_for(conn, line.variable_symbol, line.ref_id, line.currency)
                if invoice_id is None:
                    continue
                # The guard on invoice_id makes a concurrent second matcher update nothing.
                claimed = conn.execute(
                    update(BankStatementLine)
                    .where(BankStatementLine.id == line.id, BankStatementLine.invoice_id.is_(None))
                    .values(invoice_id=invoice_id, matched_at=now)
                ).rowcount
                if claimed != 1:
                    continue
                paid_on = local_date(line.paid_at) if line.paid_at else line.transfer_date
                # One statement computed on the row as it is when written: an overlapping
                # matcher's payment, committed meanwhile, is added to, not overwritten.
                conn.execute(
                    update(Invoice)
                    .where(Invoice.id == invoice_id)
                    .values(
                        paid=True,
                        paid_at=case(
                            (or_(Invoice.paid_at.is_(None), Invoice.paid_at > paid_on), paid_on),
                            else_=Invoice.paid_at,
                        ),
                        paid_amount=exact_add(Invoice.paid_amount, line.amount),
                    )
                )
                matched += 1
        return matched

    @staticmethod
    def _invoice_for(
        conn: Connection, var_symbol: str | None, ref_id: str | None, currency: str
    ) -> int | None:
        keys = [Invoice.var_symbol == var_symbol] if var_symbol else []
        if ref_id:
            keys.append(Invoice.order_code == ref_id)
        if not keys:
            return None
        # Prefer a variable-symbol hit, then a valid invoice, then the newest one.
        order: list[ColumnElement[Any]] = (
            [case((Invoice.var_symbol == var_symbol, 0), else_=1)] if var_symbol else []
        )
        order += [Invoice.is_valid.desc(), Invoice.creation_time.desc(), Invoice.id.desc()]
        return conn.execute(
            select(Invoice.id).where(Invoice.currency == currency, or_(*keys)).order_by(*order).limit(1)
        ).scalar_one_or_none()

    def lines_of(self, transfer_ids: Sequence[int]) -> list[StatementLineRecord]:
        """The stored lines of these payouts, in payout and position order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    BankStatement.transfer_id,
                    BankStatementLine.position,
                    BankStatementLine.line_type,
                    BankStatementLine.row_type,
                    BankStatementLine.payment_id,
                    BankStatementLine.ref_id,
                    BankStatementLine.variable_symbol,
                    BankStatementLine.amount,
                    BankStatementLine.fee,
                    BankStatementLine.transferred,
                    BankStatementLine.paid_at,
                    BankStatementLine.invoice_id,
                    Invoice.code.label("invoice_code"),
                )
                .join(BankStatement)
                .outerjoin(Invoice, Invoice.id == BankStatementLine.invoice_id)
                .where(BankStatement.transfer_id.in_(transfer_ids))
                .order_by(BankStatement.transfer_id, BankStatementLine.position)
            ).all()
        return [StatementLineRecord(**row._asdict()) for row in rows]

    def unmatched_payments(self, currency: str | None = None) -> list[StatementLineRecord]:
        """Every payment not (yet) matched to an invoice, oldest payout first."""
        with self.engine.connect() as conn:
            query = (
                select(BankStatement.transfer_id)
                .join(BankStatementLine)
                .where(BankStatementLine.line_type == "payment", BankStatementLine.invoice_id.is_(None))
                .distinct()
            )
            if currency is not None:
                query = query.where(BankStatement.currency == currency)
            transfer_ids = list(conn.execute(query).scalars())
        return [
            line
            for line in self.lines_of(transfer_ids)
            if line.line_type == "payment" and line.invoice_id is None
        ]
