"""The queries of the controlling report (read-only). Amounts are summed in Python: SQLite keeps
exact decimals as text and would add them as floats."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine, and_, or_, select

from backoffice.accounting.models import BankStatement, BankStatementLine, Invoice
from backoffice.queue.models import Task
from backoffice.warehouse.models import TransportBox

ZERO = Decimal(0)


@dataclass(frozen=True)
class InvoiceTotals:
    """Invoices of one currency issued in the window; totals over valid (not cancelled) ones."""

    currency: str
    count: int
    cancelled: int
    total_with_vat: Decimal
    total_without_vat: Decimal


@dataclass(frozen=True)
class PayoutTotals:
    """Comgate payouts of one currency on a day, by kind of line."""

    currency: str
    transfers: int
    payments: Decimal
    refunds: Decimal
    other: Decimal  # chargebacks and manual moves (amounts of fee lines)
    fees: Decimal
    transferred: Decimal
    matched: int
    unmatched: int


@dataclass(frozen=True)
class UnmatchedPayment:
    """A payment of the day with no invoice of its variable symbol."""

    currency: str
    transfer_id: int
    payment_id: str | None
    variable_symbol: str | None
    amount: Decimal
    paid_at: datetime | None


@dataclass(frozen=True)
class OverdueInvoice:
    """A valid invoice past its due date and not paid."""

    code: str
    currency: str
    total_with_vat: Decimal
    due_date: date
    customer: str | None


@dataclass(frozen=True)
class BoxInError:
    """A transport box waiting for a person."""

    code: str
    reason: str | None
    since: datetime


@dataclass(frozen=True)
class TaskProblem:
    """A scheduled task that failed or whose lock ran out in the window."""

    id: uuid.UUID
    task_type: str
    status: str
    attempts: int
    last_error: str | None
    at: datetime


class ReportStore:
    """Read the figures of one report."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def invoices_by_currency(self, start: datetime, end: datetime) -> list[InvoiceTotals]:
        """Invoices created in [start, end), per currency."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Invoice.currency, Invoice.is_valid, Invoice.total_with_vat, Invoice.total_without_vat)
                .where(Invoice.creation_time >= start, Invoice.creation_time < end)
                .order_by(Invoice.currency)
            ).all()
        groups: dict[str, list[tuple[bool, Decimal, Decimal]]] = defaultdict(list)
        for row in rows:
            groups[row.currency].append((row.is_valid, row.total_with_vat, row.total_without_vat))
        return [
            InvoiceTotals(
                currency=currency,
                count=sum(1 for valid, _, _ in items if valid),
                cancelled=sum(1 for valid, _, _ in items if not valid),
                total_with_vat=sum((w for valid, w, _ in items if valid), ZERO),
                total_without_vat=sum((wo for valid, _, wo in items if valid), ZERO),
            )
            for currency, items in sorted(groups.items())
        ]

    def payouts_by_currency(self, day: date) -> tuple[list[PayoutTotals], list[UnmatchedPayment]]:
        """The day's payouts per currency, and the day's payments that matched no invoice."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    BankStatement.currency,
                    BankStatement.transfer_id,
                    BankStatementLine.line_type,
                    BankStatementLine.payment_id,
                    BankStatementLine.variable_symbol,
                    BankStatementLine.amount,
                    BankStatementLine.fee,
                    BankStatementLine.transferred,
                    BankStatementLine.paid_at,
                    BankStatementLine.invoice_id,
                )
                .join(BankStatementLine, isouter=True)
                .where(BankStatement.transfer_date == day)
                .order_by(BankStatement.currency, BankStatement.transfer_id, BankStatementLine.position)
            ).all()
        currencies = sorted({r.currency for r in rows})
        totals, unmatched = [], []
        for currency in currencies:
            lines = [r for r in rows if r.currency == currency and r.line_type is not None]
            payments = [r for r in lines if r.line_type == "payment"]
            totals.append(
                PayoutTotals(
                    currency=currency,
                    transfers=len({r.transfer_id for r in rows if r.currency == currency}),
                    payments=sum((r.amount for r in payments), ZERO),
                    refunds=sum((r.amount for r in lines if r.line_type == "refund"), ZERO),
                    other=sum((r.amount for r in lines if r.line_type == "fee"), ZERO),
                    fees=sum((r.fee for r in lines), ZERO),
                    transferred=sum((r.transferred for r in lines), ZERO),
                    matched=sum(1 for r in payments if r.invoice_id is not None),
                    unmatched=sum(1 for r in payments if r.invoice_id is None),
                )
            )
            unmatched += [
                UnmatchedPayment(
                    currency, r.transfer_id, r.payment_id, r.variable_symbol, r.amount, r.paid_at
                )
                for r in payments
                if r.invoice_id is None
            ]
        return totals, unmatched

    def overdue_invoices(self, day: date) -> list[OverdueInvoice]:
        """Valid, unpaid invoices whose due date is `day` or earlier, oldest due first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Invoice.code,
                    Invoice.currency,
                    Invoice.total_with_vat,
                    Invoice.due_date,
                    Invoice.customer_company,
                    Invoice.customer_name,
                )
                .where(Invoice.is_valid.is_(True), Invoice.paid.is_(False), Invoice.due_date <= day)
                .order_by(Invoice.due_date, Invoice.code)
            ).all()
        return [
            OverdueInvoice(
                r.code, r.currency, r.total_with_vat, r.due_date, r.customer_company or r.customer_name
            )
            for r in rows
        ]

    def boxes_in_error(self) -> list[BoxInError]:
        """Transport boxes in state `Error`, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TransportBox.code, TransportBox.error_reason, TransportBox.updated_at)
                .where(TransportBox.state == "Error")
                .order_by(TransportBox.updated_at, TransportBox.code)
            ).all()
        return [BoxInError(r.code, r.error_reason, r.updated_at) for r in rows]

    def task_problems(self, start: datetime, end: datetime) -> list[TaskProblem]:
        """Tasks that failed, or whose lock ran out (swept or not), in [start, end)."""
        ran_out_unswept = and_(Task.status == "locked", Task.locked_until >= start, Task.locked_until < end)
        changed_in_window = and_(
            Task.status.in_(("failed", "expired")), Task.updated_at >= start, Task.updated_at < end
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Task.id,
                    Task.task_type,
                    Task.status,
                    Task.attempts,
                    Task.last_error,
                    Task.updated_at,
                    Task.locked_until,
                )
                .where(or_(ran_out_unswept, changed_in_window))
                .order_by(Task.updated_at, Task.id)
            ).all()
        return [
            TaskProblem(
                id=r.id,
                task_type=r.task_type,
                status="expired" if r.status == "locked" else r.status,
                attempts=r.attempts,
                last_error=r.last_error,
                at=r.locked_until if r.status == "locked" else r.updated_at,
            )
            for r in rows
        ]
