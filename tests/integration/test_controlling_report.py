"""The controlling report's figures on PostgreSQL and SQLite equal sums computed here from the seed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine

from backoffice.accounting.controlling import build_report
from tests.controlling_seed import (
    DAY,
    NOW,
    invoice_expectations,
    seed_boxes_and_tasks,
    seed_invoices,
    seed_payouts,
)


def test_report_figures_equal_independent_sums(engine: Engine) -> None:
    seed_invoices(engine)
    transfers = seed_payouts(engine)
    task_ids = seed_boxes_and_tasks(engine)

    report = build_report(engine, DAY, NOW)

    for totals in report.invoices:
        expected = invoice_expectations(totals.currency)
        assert (totals.count, totals.cancelled, totals.total_with_vat, totals.total_without_vat) == expected
    assert [(t.currency, t.count) for t in report.invoices] == [("CZK", 2), ("EUR", 2)]

    assert [p.currency for p in report.payouts] == ["CZK", "EUR"]
    for payout in report.payouts:
        rows = transfers[payout.currency].rows
        assert payout.transfers == 1
        assert payout.payments == sum(r.confirmed_amount for r in rows if r.row_type == 1)
        assert payout.refunds == sum(r.confirmed_amount for r in rows if r.row_type == 2)
        assert payout.other == sum(r.confirmed_amount for r in rows if r.row_type in (3, 4))
        assert payout.fees == sum(r.fee for r in rows)
        assert payout.transferred == transfers[payout.currency].summary().transferred_amount
        payments = [r for r in rows if r.row_type == 1]
        expected_matched = 1 if payout.currency == "CZK" else 0
        assert (payout.matched, payout.unmatched) == (expected_matched, len(payments) - expected_matched)
    assert len(report.unmatched_payments) == sum(p.unmatched for p in report.payouts)
    assert "2026000101" not in {p.variable_symbol for p in report.unmatched_payments}

    assert [i.code for i in report.overdue_invoices] == ["D2", "D1"]
    assert report.overdue_totals == {"CZK": Decimal("700.70"), "EUR": Decimal("15.55")}
    assert [(b.code, b.reason) for b in report.boxes_in_error] == [
        ("BOX-1", "ANL-999 unknown"),
        ("BOX-2", None),
    ]
    problems = {p.id: p for p in report.task_problems}
    assert set(problems) == {task_ids["failed"], task_ids["expired"], task_ids["ran_out"]}
    assert problems[task_ids["ran_out"]].status == "expired"
    assert problems[task_ids["failed"]].last_error == "export failed"


def test_an_empty_day_reports_nothing(engine: Engine) -> None:
    report = build_report(engine, DAY, NOW)
    assert (report.invoices, report.payouts, report.unmatched_payments) == ([], [], [])
    assert report.issues == 0


def test_task_window_is_the_24_hours_before_the_report(engine: Engine) -> None:
    ids = seed_boxes_and_tasks(engine)
    # A report 90 minutes earlier: the lock that runs out at NOW - 1 h has not yet.
    report = build_report(engine, DAY, NOW - timedelta(minutes=90))
    assert {p.id for p in report.task_problems} == {ids["failed"], ids["expired"]}
