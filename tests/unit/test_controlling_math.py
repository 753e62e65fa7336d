"""Controlling report math and rendering to markdown/tables, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from backoffice.accounting.controlling import ControllingReport, FailedFlowRun
from backoffice.accounting.controlling_output import attention_table, markdown, money, summary_table
from backoffice.accounting.report_store import (
    BoxInError,
    InvoiceTotals,
    OverdueInvoice,
    PayoutTotals,
    TaskProblem,
    UnmatchedPayment,
)
from backoffice.calendar import day_bounds

END = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


def report() -> ControllingReport:
    return ControllingReport(
        day=date(2026, 11, 27),
        window_start=END - timedelta(hours=24),
        window_end=END,
        invoices=[
            InvoiceTotals("CZK", 3, 1, Decimal("1210.00"), Decimal("1000.00")),
            InvoiceTotals("EUR", 1, 0, Decimal("24.20"), Decimal("20.00")),
        ],
        payouts=[
            PayoutTotals(
                "CZK",
                1,
                Decimal("1815.50"),
                Decimal("-100.00"),
                Decimal("0"),
                Decimal("19.79"),
                Decimal("1695.71"),
                2,
                1,
            )
        ],
        unmatched_payments=[
            UnmatchedPayment("CZK", 26112701, "AB12-CD34-EF56", "7712345678", Decimal("300"), None)
        ],
        overdue_invoices=[
            OverdueInvoice("2026000001", "CZK", Decimal("500.10"), date(2026, 11, 20), "Jana Nováková"),
            OverdueInvoice("2026000002", "CZK", Decimal("99.90"), date(2026, 11, 27), None),
            OverdueInvoice("2026000003", "PLN", Decimal("10"), date(2026, 11, 1), None),
        ],
        boxes_in_error=[BoxInError("BOX-7", "ANL-001: unknown product", END)],
        task_problems=[TaskProblem(uuid.uuid4(), "EshopExport", "failed", 5, "boom", END)],
        failed_flow_runs=[FailedFlowRun("finish-transport", "brave-otter", "Crashed", END, "killed")],
    )


def test_prague_day_bounds_follow_daylight_saving_time() -> None:
    assert day_bounds(date(2026, 11, 27)) == (
        datetime(2026, 11, 26, 23, tzinfo=UTC),
        datetime(2026, 11, 27, 23, tzinfo=UTC),
    )
    start, end = day_bounds(date(2026, 3, 29))  # spring forward: a 23-hour day
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2026, 10, 25))  # fall back: a 25-hour day
    assert end - start == timedelta(hours=25)


def test_overdue_totals_and_issue_count() -> None:
    r = report()
    assert r.overdue_totals == {"CZK": Decimal("600.00"), "PLN": Decimal("10")}
    assert r.issues == 1 + 3 + 1 + 1 + 1


def test_summary_table_has_a_row_per_currency_with_exact_figures() -> None:
    rows = {row["currency"]: row for row in summary_table(report())}
    assert set(rows) == {"CZK", "EUR", "PLN"}
    assert rows["CZK"] == {
        "currency": "CZK",
        "invoices": "3",
        "with VAT": "1210.00",
        "without VAT": "1000.00",
        "payouts": "1",
        "payments": "1815.50",
        "refunds": "-100.00",
        "fees": "19.79",
        "transferred": "1695.71",
        "matched": "2",
        "unmatched": "1",
        "past due": "600.00",
    }
    assert rows["EUR"]["payments"] == "0.00" and rows["EUR"]["with VAT"] == "24.20"
    assert rows["PLN"]["invoices"] == "0" and rows["PLN"]["past due"] == "10.00"


def test_attention_lists_every_item_once() -> None:
    kinds = [row["kind"] for row in attention_table(report())]
    assert kinds == [
        "unmatched payment",
        "invoice past due",
        "invoice past due",
        "invoice past due",
        "box in Error",
        "task failed",
        "flow run Crashed",
    ]


def test_markdown_states_the_counts() -> None:
    text = markdown(report())
    assert "# Controlling 2026-11-27" in text
    assert (
        "| CZK | 3 | 1210.00 | 1000.00 | 1 | 1815.50 | -100.00 | 19.79 | 1695.71 | 2 | 1 | 600.00 |" in text
    )
    assert "Invoices past due and unpaid: **3**, CZK 600.00, PLN 10.00" in text
    assert "Failed job runs: **1**" in text
    assert "finish-transport / brave-otter" in text


def test_money_keeps_exact_decimals() -> None:
    assert money(Decimal("0.1") + Decimal("0.2")) == "0.30"
    assert money(Decimal("-1234.5")) == "-1234.50"
