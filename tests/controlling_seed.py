"""Seed data of the controlling report tests: invoices, payouts, boxes and tasks with known figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Engine, insert

from backoffice.accounting.bank_statement_store import BankStatementStore
from backoffice.accounting.comgate_import import Payout, store_payouts
from backoffice.accounting.models import Invoice
from backoffice.calendar import PRAGUE
from backoffice.integrations.comgate import parse_row, parse_transfer
from backoffice.integrations.fakes.comgate import FakeComgate
from backoffice.integrations.fakes.comgate_data import FakeTransfer
from backoffice.queue.models import Task
from backoffice.warehouse.models import TransportBox

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
    """A Prague wall-clock moment."""
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
    """INVOICES into the invoices table, as the Shoptet import would store them."""
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
    """Payouts of DAY (CZK paying invoice A1, EUR) and of the day before, stored and matched."""
    fake = FakeComgate(seed=4)
    czk = fake.generate_day(
        DAY, "CZK", var_symbols=["2026000101"], amounts={"2026000101": Decimal("1210.00")}
    )
    eur = fake.generate_day(DAY, "EUR", chargeback=True)
    earlier = fake.generate_day(DAY - timedelta(days=1), "CZK")
    store = BankStatementStore(engine)
    for transfer in (czk, eur, earlier):
        payout = Payout(
            parse_transfer(transfer.list_item()),
            tuple(parse_row(r) for r in transfer.wire_rows(fake.merchant)),
        )
        store_payouts(store, [payout], transfer.currency, transfer.transfer_date, NOW)
    return {"CZK": czk, "EUR": eur}


def seed_boxes_and_tasks(engine: Engine, now: datetime = NOW) -> dict[str, uuid.UUID]:
    """Two boxes in Error, one Received; tasks failed/expired/locked/done around `now`."""

    def box(code: str, state: str, reason: str | None = None) -> dict[str, object]:
        return {
            "code": code,
            "state": state,
            "error_reason": reason,
            "created_at": now - timedelta(days=2),
            "created_by": "test",
            "updated_at": now - timedelta(hours=5),
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
            "available_at": now - timedelta(days=3),
            "attempts": 2,
            "max_attempts": 5,
            "locked_until": now + locked_until if locked_until is not None else None,
            "last_error": "export failed" if status == "failed" else None,
            "version": 1,
            "created_at": now - timedelta(days=3),
            "created_by": "test",
            "updated_at": now + updated,
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


def invoice_expectations(currency: str) -> tuple[int, int, Decimal, Decimal]:
    """Count, cancelled, totals with and without VAT of DAY's invoices in `currency`, from INVOICES."""
    start, end = prague(DAY, 0), prague(DAY + timedelta(days=1), 0)
    of_day = [i for i in INVOICES if i.currency == currency and start <= i.created < end]
    valid = [i for i in of_day if i.valid]
    return (
        len(valid),
        len(of_day) - len(valid),
        sum((i.with_vat for i in valid), Decimal(0)),
        sum((i.without_vat for i in valid), Decimal(0)),
    )
