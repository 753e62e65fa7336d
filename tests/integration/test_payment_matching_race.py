"""Two overlapping payment matchers paying into one invoice lose neither payment, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from backoffice.accounting.bank_statement_store import BankStatementStore, NewLine, NewStatement
from backoffice.accounting.models import Invoice
from tests.integration.test_comgate_import import NOW, add_invoice

VAR_SYMBOL = "2026000777"


def payout(transfer_id: int, amount: str, paid_at: datetime) -> NewStatement:
    """A payout with one payment of `amount` paying the invoice of VAR_SYMBOL."""
    line = NewLine(
        line_type="payment",
        row_type=1,
        payment_id=f"PAY-{transfer_id}",
        ref_id=None,
        variable_symbol=VAR_SYMBOL,
        amount=Decimal(amount),
        fee=Decimal(0),
        transferred=Decimal(amount),
        paid_at=paid_at,
        method="CARD",
        label=None,
    )
    return NewStatement(
        transfer_id=transfer_id,
        transfer_date=date(2026, 11, 27),
        currency="CZK",
        account="123/0100",
        account_outgoing="999/0300",
        variable_symbol=str(transfer_id),
        total_amount=Decimal(amount),
        total_fee=Decimal(0),
        total_transferred=Decimal(amount),
        lines=(line,),
    )


@pytest.fixture
def invoice_writes_meet(engine: Engine, dialect: str) -> Iterator[threading.Barrier]:
    """On PostgreSQL, hold each write of an invoice until both matchers are about to write one.

    So both have read everything they read before either writes: a read-then-write total loses
    the first payment here every time. SQLite is left alone: its transactions take the one write
    lock at BEGIN (backoffice.db), so a second matcher could never reach this point to meet.
    """
    meet = threading.Barrier(2, timeout=30)

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE INVOICES"):
            meet.wait()

    if dialect == "postgresql":
        event.listen(engine, "before_cursor_execute", before)
    yield meet
    if dialect == "postgresql":
        event.remove(engine, "before_cursor_execute", before)


def test_two_overlapping_matchers_lose_no_payment(
    engine: Engine, invoice_writes_meet: threading.Barrier
) -> None:
    add_invoice(engine, "FA777", VAR_SYMBOL, "CZK", "150.30")
    store = BankStatementStore(engine)
    assert store.insert_if_new(payout(1, "100.10", datetime(2026, 11, 27, 9, tzinfo=UTC)), NOW)
    assert store.insert_if_new(payout(2, "50.20", datetime(2026, 11, 26, 9, tzinfo=UTC)), NOW)
    start = threading.Barrier(2, timeout=30)
    matched: dict[int, int] = {}

    def match(transfer_id: int) -> None:
        start.wait()  # both matchers set off together
        matched[transfer_id] = store.match_payments([transfer_id], NOW)

    threads = [threading.Thread(target=match, args=(tid,)) for tid in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert matched == {1: 1, 2: 1}
    assert not invoice_writes_meet.broken
    with engine.connect() as conn:
        invoice = conn.execute(
            select(Invoice.paid, Invoice.paid_at, Invoice.paid_amount).where(Invoice.code == "FA777")
        ).one()
    # Both payments counted, and the invoice paid on the earlier payment's (Prague) day.
    assert invoice.paid is True
    assert invoice.paid_amount == Decimal("150.30")
    assert invoice.paid_at == date(2026, 11, 26)


def test_a_payment_adds_exactly_to_what_was_paid(engine: Engine) -> None:
    """Amounts that are inexact as floats add up exactly (SQLite keeps the total as text)."""
    add_invoice(engine, "FA778", VAR_SYMBOL, "CZK", "0.30")
    store = BankStatementStore(engine)
    for transfer_id, amount in ((11, "0.10"), (12, "0.20"), (13, "12345678.0101")):
        store.insert_if_new(payout(transfer_id, amount, datetime(2026, 11, 27, 9, tzinfo=UTC)), NOW)
        assert store.match_payments([transfer_id], NOW) == 1
    with engine.connect() as conn:
        total = conn.execute(select(Invoice.paid_amount).where(Invoice.code == "FA778")).scalar_one()
    assert total == Decimal("12345678.3101")
