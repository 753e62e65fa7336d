"""Upserting invoices and items by code, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, func, select, update

from backoffice.accounting.invoice_store import InvoiceRecord, InvoiceStore
from backoffice.accounting.models import Invoice, InvoiceItem
from backoffice.accounting.shoptet_import import parse_invoice
from backoffice.integrations.fakes.shoptet_data import generate_invoices


def _records(count: int = 7, seed: int = 11) -> list[InvoiceRecord]:
    raw = generate_invoices(seed, [date(2024, 5, 6)], count)
    return [parse_invoice(r) for r in raw.values()]


def _count(engine: Engine, table: type[Invoice] | type[InvoiceItem]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_new_invoices_are_stored_exactly(engine: Engine) -> None:
    records = _records()
    result = InvoiceStore(engine).upsert(records)
    assert sorted(result.imported) == sorted(r.code for r in records)
    assert result.updated == result.unchanged == []
    assert InvoiceStore(engine).load() == sorted(records, key=lambda r: r.code)


def test_a_rerun_adds_nothing(engine: Engine) -> None:
    records = _records()
    InvoiceStore(engine).upsert(records)
    items = _count(engine, InvoiceItem)
    result = InvoiceStore(engine).upsert(records)
    assert result.imported == result.updated == []
    assert len(result.unchanged) == len(records)
    assert (_count(engine, Invoice), _count(engine, InvoiceItem)) == (len(records), items)


def test_a_changed_invoice_is_rewritten_with_its_items(engine: Engine) -> None:
    records = _records()
    InvoiceStore(engine).upsert(records)
    first = records[0]
    new_items = (
        *first.items,
        dataclasses.replace(first.items[0], position=len(first.items) + 1, name="Dárek"),
    )
    changed = dataclasses.replace(first, total_with_vat=Decimal("123456.78"), items=new_items)
    result = InvoiceStore(engine).upsert([changed, *records[1:]])
    assert result.updated == [first.code]
    assert len(result.unchanged) == len(records) - 1
    [stored] = InvoiceStore(engine).load([first.code])
    assert stored == changed
    assert _count(engine, Invoice) == len(records)


def test_an_update_keeps_the_payment_matching(engine: Engine) -> None:
    records = _records(2)
    InvoiceStore(engine).upsert(records)
    with engine.begin() as conn:
        conn.execute(
            update(Invoice)
            .where(Invoice.code == records[0].code)
            .values(paid=True, paid_at=date(2024, 5, 8), paid_amount=Decimal("10.50"))
        )
    InvoiceStore(engine).upsert([dataclasses.replace(records[0], customer_name="Jana Nová")])
    with engine.connect() as conn:
        row = conn.execute(select(*Invoice.__table__.c).where(Invoice.code == records[0].code)).one()
    assert (row.customer_name, row.paid, row.paid_at, row.paid_amount) == (
        "Jana Nová",
        True,
        date(2024, 5, 8),
        Decimal("10.50"),
    )
    assert row.imported_at <= row.updated_at


def test_batches_cover_everything(engine: Engine) -> None:
    records = _records(23, seed=5)
    random.Random(1).shuffle(records)
    result = InvoiceStore(engine).upsert(records, batch_size=4)
    assert len(result.imported) == 23
    assert InvoiceStore(engine).load() == sorted(records, key=lambda r: r.code)


def test_large_and_fractional_amounts_stay_exact(engine: Engine) -> None:
    [record] = _records(1)
    exact = dataclasses.replace(
        record,
        total_with_vat=Decimal("99999999999999.99"),
        total_without_vat=Decimal("0.10"),
        total_vat=Decimal("0.20"),
        exchange_rate=Decimal("25.12345678"),
    )
    InvoiceStore(engine).upsert([exact])
    [stored] = InvoiceStore(engine).load()
    assert stored.total_with_vat == Decimal("99999999999999.99")
    assert stored.total_without_vat + stored.total_vat == Decimal("0.30")
    assert stored.exchange_rate == Decimal("25.12345678")
