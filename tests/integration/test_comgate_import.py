"""Comgate payouts stored as bank statements on PostgreSQL and SQLite: exact rows, matching, re-runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, insert, select

from backoffice.accounting.bank_statement_store import BankStatementStore
from backoffice.accounting.comgate_import import (
    CURRENCIES,
    Payout,
    fetch_payouts,
    store_payouts,
    to_statement,
)
from backoffice.accounting.models import BankStatement, BankStatementLine, Invoice
from backoffice.calendar import PRAGUE
from backoffice.integrations.comgate import ComgateClient, ComgateCredentials, ComgateError, RowType
from backoffice.integrations.fakes.comgate import FakeComgate
from backoffice.settings import Settings
from tests.servers import serve

DAY = date(2026, 11, 27)
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def add_invoice(engine: Engine, code: str, var_symbol: str, currency: str, total: str) -> int:
    """Insert an invoice as the Shoptet import would leave it (unpaid)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Invoice)
                .values(
                    code=code,
                    var_symbol=var_symbol,
                    order_code=f"O{code}",
                    currency=currency,
                    creation_time=datetime(2026, 11, 25, 10, tzinfo=UTC),
                    total_with_vat=Decimal(total),
                    total_without_vat=(Decimal(total) / Decimal("1.21")).quantize(Decimal("0.01")),
                    total_vat=Decimal(0),
                    exchange_rate=Decimal(1),
                    is_valid=True,
                    paid=False,
                    content_hash="x" * 64,
                    imported_at=NOW,
                    updated_at=NOW,
                )
                .returning(Invoice.id)
            ).scalar_one()
        )


@pytest.fixture
def fake() -> FakeComgate:
    """A fake Comgate whose CZK payout pays two known invoices (plus unmatched payments)."""
    fake = FakeComgate(merchant="shop-1", secret="s3cret", seed=7)
    fake.generate_day(
        DAY,
        "CZK",
        var_symbols=["2026000101", "2026000102"],
        amounts={"2026000101": Decimal("1210.00"), "2026000102": Decimal("605.50")},
        monthly_fee=True,
        chargeback=True,
    )
    fake.generate_day(DAY, "EUR", var_symbols=["2026000201"])
    return fake


@pytest.fixture
def payouts(fake: FakeComgate) -> Iterator[dict[str, list[Payout]]]:
    """The day's payouts per currency, fetched from the fake over HTTP."""
    settings = Settings(
        comgate_payout_account_czk=fake.accounts["CZK"], comgate_payout_account_eur=fake.accounts["EUR"]
    )
    with serve(fake.app) as url, ComgateClient(url, ComgateCredentials("shop-1", "s3cret")) as client:
        yield {
            currency: list(fetch_payouts(client, DAY, currency, settings).payouts) for currency in CURRENCIES
        }


def count(engine: Engine, model: type[BankStatement] | type[BankStatementLine]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_imported_rows_equal_the_fakes_data(
    engine: Engine, fake: FakeComgate, payouts: dict[str, list[Payout]]
) -> None:
    store = BankStatementStore(engine)
    result = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)
    expected = fake.transfers_on(DAY, "CZK")
    assert result.transfers == result.new_transfers == len(expected) == 1
    transfer = expected[0]

    with engine.connect() as conn:
        statement = conn.execute(select(BankStatement)).one()
    assert statement.transfer_id == transfer.transfer_id
    assert statement.currency == "CZK"
    assert statement.account == fake.accounts["CZK"]
    assert statement.variable_symbol == transfer.variable_symbol
    summary = transfer.summary()
    assert (statement.total_amount, statement.total_fee, statement.total_transferred) == (
        summary.confirmed_amount,
        summary.fee,
        summary.transferred_amount,
    )

    lines = store.lines_of([transfer.transfer_id])
    assert len(lines) == len(transfer.rows) == result.lines
    for line, row in zip(lines, transfer.rows, strict=True):
        assert line.row_type == row.row_type
        assert line.line_type == {1: "payment", 2: "refund", 3: "fee", 4: "fee"}[row.row_type]
        assert (line.amount, line.fee, line.transferred) == (
            row.confirmed_amount,
            row.fee,
            row.transferred_amount,
        )
        assert line.variable_symbol == (row.payer_variable_symbol or None)
        assert line.payment_id == (row.trans_id or None)
        expected_paid = row.paid_at.replace(tzinfo=PRAGUE).astimezone(UTC) if row.paid_at else None
        assert line.paid_at == expected_paid
    assert result.fees == summary.fee
    assert result.payments == sum(r.confirmed_amount for r in transfer.rows if r.row_type == 1)
    assert result.refunds == sum(r.confirmed_amount for r in transfer.rows if r.row_type == 2)


def test_payments_mark_their_invoices_paid_and_the_rest_stays_visible(
    engine: Engine, fake: FakeComgate, payouts: dict[str, list[Payout]]
) -> None:
    first = add_invoice(engine, "FA101", "2026000101", "CZK", "1210.00")
    second = add_invoice(engine, "FA102", "2026000102", "CZK", "605.50")
    other_currency = add_invoice(engine, "FA201", "2026000201", "CZK", "10.00")  # EUR payment's VS
    store = BankStatementStore(engine)

    result = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)

    rows = {r.payer_variable_symbol: r for r in fake.transfers_on(DAY, "CZK")[0].rows}
    with engine.connect() as conn:
        invoices = {i.id: i for i in conn.execute(select(Invoice)).all()}
    for invoice_id, vs in ((first, "2026000101"), (second, "2026000102")):
        paid_at = rows[vs].paid_at
        assert paid_at is not None
        assert invoices[invoice_id].paid is True
        assert invoices[invoice_id].paid_at == paid_at.date()  # the fake prints Prague time
        assert invoices[invoice_id].paid_amount == rows[vs].confirmed_amount
    assert invoices[other_currency].paid is False
    unmatched_total = sum(1 for r in fake.transfers_on(DAY, "CZK")[0].rows if r.row_type == 1) - 2
    assert (result.matched, result.matched_now, result.unmatched) == (2, 2, unmatched_total)
    transfer_id = fake.transfers_on(DAY, "CZK")[0].transfer_id
    codes = {line.variable_symbol: line.invoice_code for line in store.lines_of([transfer_id])}
    assert (codes["2026000101"], codes["2026000102"]) == ("FA101", "FA102")
    unmatched = store.unmatched_payments("CZK")
    assert len(unmatched) == unmatched_total
    assert all(line.variable_symbol and line.variable_symbol.startswith("77") for line in unmatched)


def test_rerun_adds_nothing_and_late_invoices_still_match(
    engine: Engine, payouts: dict[str, list[Payout]]
) -> None:
    add_invoice(engine, "FA101", "2026000101", "CZK", "1210.00")
    store = BankStatementStore(engine)
    first = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)
    statements, lines = count(engine, BankStatement), count(engine, BankStatementLine)

    again = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)
    assert (again.new_transfers, again.new_lines, again.matched_now) == (0, 0, 0)
    assert (again.transfers, again.lines, again.matched) == (first.transfers, first.lines, first.matched)
    assert (count(engine, BankStatement), count(engine, BankStatementLine)) == (statements, lines)
    with engine.connect() as conn:
        paid_amount = conn.execute(select(Invoice.paid_amount).where(Invoice.code == "FA101")).scalar_one()
    assert paid_amount == Decimal("1210.00")

    add_invoice(engine, "FA102", "2026000102", "CZK", "605.50")  # the Shoptet import ran late
    late = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)
    assert (late.new_transfers, late.matched_now, late.matched) == (0, 1, first.matched + 1)
    assert count(engine, BankStatementLine) == lines


def test_each_currency_takes_only_its_payout_account(
    engine: Engine, payouts: dict[str, list[Payout]]
) -> None:
    store = BankStatementStore(engine)
    eur = store_payouts(store, payouts["EUR"], "EUR", DAY, NOW)
    czk = store_payouts(store, payouts["CZK"], "CZK", DAY, NOW)
    assert (eur.transfers, czk.transfers) == (1, 1)
    with engine.connect() as conn:
        currencies = dict(conn.execute(select(BankStatement.transfer_id, BankStatement.currency)).all())
    assert sorted(currencies.values()) == ["CZK", "EUR"]


def test_a_eur_payout_to_an_account_nobody_configured_is_imported_by_its_rows_currency(
    engine: Engine, fake: FakeComgate
) -> None:
    # The settings' account differs from the one Comgate pays to: the rows' Měna still decides.
    settings = Settings(comgate_payout_account_czk=fake.accounts["CZK"], comgate_payout_account_eur="1/0000")
    with serve(fake.app) as url, ComgateClient(url, ComgateCredentials("shop-1", "s3cret")) as client:
        eur = fetch_payouts(client, DAY, "EUR", settings)
        czk = fetch_payouts(client, DAY, "CZK", settings)
    eur_transfer = fake.transfers_on(DAY, "EUR")[0]
    assert [p.transfer.transfer_id for p in eur.payouts] == [eur_transfer.transfer_id]
    decision = next(d for d in eur.decisions if d.transfer_id == eur_transfer.transfer_id)
    assert "none of the configured payout accounts (rows say EUR)" in decision.note
    assert [d.action for d in czk.decisions] == ["import", "other currency"]
    assert eur.skipped == czk.skipped == ()

    result = store_payouts(BankStatementStore(engine), eur.payouts, "EUR", DAY, NOW)
    assert result.transfers == 1
    with engine.connect() as conn:
        statement = conn.execute(select(BankStatement)).one()
    assert (statement.currency, statement.account) == ("EUR", "2900000000/2010")


def test_a_payout_that_does_not_add_up_is_refused(payouts: dict[str, list[Payout]]) -> None:
    payout = payouts["CZK"][0]
    bad_rows = tuple(
        replace(row, fee=row.fee + 1) if row.row_type is RowType.PAYMENT else row for row in payout.rows
    )
    with pytest.raises(ComgateError, match="summary row"):
        to_statement(Payout(payout.transfer, bad_rows), "CZK")
