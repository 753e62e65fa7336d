"""The controlling report's figures on PostgreSQL and SQLite equal sums computed here from the seed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from backoffice.comgate_import import Payout, store_payouts
from backoffice.controlling import build_report
from backoffice.fakes.comgate import FakeComgate
from backoffice.fakes.comgate_data import FakeTransfer
from backoffice.integrations.comgate import parse_row, parse_transfer
from backoffice.models.accounting import Invoice
from backoffice.models.queue import Task
from backoffice.models.warehouse import TransportBox
from backoffice.storage.statements import StatementStore

PRAGUE = ZoneInfo("Europe/Prague")
DAY = date(2026, 11, 27)
NOW = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 01:00 in Prague, the report's schedule


@dataclass(frozen=True)
class SeedInvoice:
    code: str
    currency: str
    created: datetime
    with_vat: Decimal
    without_vat: Decimal
    valid: bool = True
    due: date | None = None
    paid: bool = False
    var_symbol: str | None = None


def prague(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PRAGUE)


INVOICES = [
    SeedInvoice(
        "A1", "CZK", prague(DAY, 0, 30), Decimal("1210.00"), Decimal("1000.00"), var_symbol="2026000101"
    ),
    SeedInvoice("A2", "CZK", prague(DAY, 23, 59), Decimal("363.30"), Decimal("300.25")),
    SeedInvoice("A3", "CZK", prague(DAY, 12), Decimal("99.00"), Decimal("81.82"), valid=False),
    SeedInvoice("A4", "EUR", prague(DAY, 9), Decimal("24.20"), Decimal("20.00")),
    SeedInvoice("A5", "EUR", prague(DAY, 10), Decimal("48.41"), Decimal("40.01")),
    # Outside the day (Prague): before midnight and at the next midnight.
    SeedInvoice("B1", "CZK", prague(DAY - timedelta(days=1), 23, 59), Decimal("500"), Decimal("413.22")),
    SeedInvoice("B2", "EUR", prague(DAY + timedelta(days=1), 0, 0), Decimal("10"), Decimal("8.26")),
    # Due dates: due on the day and before it (unpaid, valid) are past due; the others are not.
    SeedInvoice(
        "D1", "CZK", prague(DAY - timedelta(days=20), 9), Decimal("700.70"), Decimal("579.09"), due=DAY
    ),
    SeedInvoice(
        "D2",
        "EUR",
        prague(DAY - timedelta(days=30), 9),
        Decimal("15.55"),
        Decimal("12.85"),
        due=DAY - timedelta(5),
    ),
    SeedInvoice(
        "D3", "CZK", prague(DAY - timedelta(days=20), 9), Decimal("1"), Decimal("1"), due=DAY + timedelta(1)
    ),
    SeedInvoice(
        "D4",
        "CZK",
        prague(DAY - timedelta(days=20), 9),
        Decimal("2"),
        Decimal("2"),
        due=DAY - timedelta(3),
        paid=True,
    ),
    SeedInvoice(
        "D5",
        "CZK",
        prague(DAY - timedelta(days=20), 9),
        Decimal("3"),
        Decimal("3"),
        due=DAY - timedelta(3),
        valid=False,
    ),
]


def seed_invoices(engine: Engine) -> None:
    with engine.begin() as conn:
        for i in INVOICES:
            conn.execute(
                insert(Invoice).values(
                    code=i.code,
                    var_symbol=i.var_symbol or i.code,
                    order_code=None,
                    currency=i.currency,
                    creation_time=i.created,
                    due_date=i.due,
                    total_with_vat=i.with_vat,
                    total_without_vat=i.without_vat,
                    total_vat=i.with_vat - i.without_vat,
                    exchange_rate=Decimal(1),
                    is_valid=i.valid,
                    paid=i.paid,
                    content_hash="0" * 64,
                    imported_at=NOW,
                    updated_at=NOW,
                )
            )


def seed_payouts(engine: Engine) -> dict[str, FakeTransfer]:
    fake = FakeComgate(seed=4)
    czk = fake.generate_day(
        DAY, "CZK", var_symbols=["2026000101"], amounts={"2026000101": Decimal("1210.00")}
    )
    eur = fake.generate_day(DAY, "EUR", chargeback=True)
    earlier = fake.generate_day(DAY - timedelta(days=1), "CZK")
    store = StatementStore(engine)
    for transfer in (czk, eur, earlier):
        payout = Payout(
            parse_transfer(transfer.list_item()),
            tuple(parse_row(r) for r in transfer.wire_rows(fake.merchant)),
        )
        store_payouts(store, [payout], transfer.currency, transfer.transfer_date, NOW)
    return {"CZK": czk, "EUR": eur}


def seed_boxes_and_tasks(engine: Engine) -> dict[str, uuid.UUID]:
    def box(code: str, state: str, reason: str | None = None) -> dict[str, object]:
        return {
            "code": code,
            "state": state,
            "error_reason": reason,
            "created_at": NOW - timedelta(days=2),
            "created_by": "test",
            "updated_at": NOW - timedelta(hours=5),
            "updated_by": "test",
            "version": 1,
        }

    ids = {
        name: uuid.uuid4() for name in ("failed", "old_failed", "expired", "ran_out", "locked", "done", "new")
    }

    def task(
        name: str, status: str, updated: timedelta, locked_until: timedelta | None = None
    ) -> dict[str, object]:
        return {
            "id": ids[name],
            "task_type": "EshopExport",
            "data": {},
            "status": status,
            "priority": 0,
            "available_at": NOW - timedelta(days=3),
            "attempts": 2,
            "max_attempts": 5,
            "locked_until": NOW + locked_until if locked_until is not None else None,
            "last_error": "export failed" if status == "failed" else None,
            "version": 1,
            "created_at": NOW - timedelta(days=3),
            "created_by": "test",
            "updated_at": NOW + updated,
            "updated_by": "test",
        }

    with engine.begin() as conn:
        conn.execute(
            insert(TransportBox),
            [box("BOX-1", "Error", "ANL-999 unknown"), box("BOX-2", "Error"), box("BOX-3", "Received")],
        )
        conn.execute(
            insert(Task),
            [
                task("failed", "failed", -timedelta(hours=2)),
                task("old_failed", "failed", -timedelta(hours=30)),
                task("expired", "expired", -timedelta(hours=3)),
                task("ran_out", "locked", -timedelta(hours=4), locked_until=-timedelta(hours=1)),
                task("locked", "locked", -timedelta(hours=1), locked_until=timedelta(minutes=5)),
                task("done", "completed", -timedelta(hours=1)),
                task("new", "pending", -timedelta(hours=1)),
            ],
        )
    return ids


def test_report_figures_equal_independent_sums(engine: Engine) -> None:
    seed_invoices(engine)
    transfers = seed_payouts(engine)
    task_ids = seed_boxes_and_tasks(engine)

    report = build_report(engine, DAY, NOW)

    start, end = prague(DAY, 0), prague(DAY + timedelta(days=1), 0)
    for totals in report.invoices:
        of_day = [i for i in INVOICES if i.currency == totals.currency and start <= i.created < end]
        valid = [i for i in of_day if i.valid]
        assert totals.count == len(valid)
        assert totals.cancelled == len(of_day) - len(valid)
        assert totals.total_with_vat == sum(i.with_vat for i in valid)
        assert totals.total_without_vat == sum(i.without_vat for i in valid)
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
