"""Import one day's Shoptet invoices of one currency: fetch, parse to exact decimals, upsert.

Plain functions, tested without Prefect; `flows/import_shoptet_invoices.py` wires them.
"""

from __future__ import annotations

import re
import time as clock
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine

from backoffice.accounting.invoice_store import (
    InvoiceItemRecord,
    InvoiceRecord,
    InvoiceStore,
    UpsertResult,
)
from backoffice.calendar import day_bounds, to_prague
from backoffice.errors import ValidationFailed
from backoffice.integrations.shoptet import JSONObject, ShoptetClient, ShoptetError, parse_time

CHUNK_SIZE = 500


@dataclass
class Timings:
    """Wall-clock seconds per phase of an import."""

    http: float = 0.0
    parsing: float = 0.0
    database: float = 0.0  # on the writer thread, overlapping `http`
    total: float = 0.0


@dataclass
class ImportReport:
    """What one import did, for the artifact and the benchmark."""

    day: date
    currency: str
    fetched: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    total_with_vat: Decimal = Decimal(0)
    total_without_vat: Decimal = Decimal(0)
    total_vat: Decimal = Decimal(0)
    flagged: list[str] = field(default_factory=list)
    """Invoices imported with a null amount or price on a line: `code: what was null`."""
    timings: Timings = field(default_factory=Timings)


def check_currency(currency: str) -> str:
    """`currency` as an ISO 4217 code (`czk` → `CZK`); anything else is a ValidationFailed."""
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValidationFailed(f"Currency must be a 3-letter ISO code such as CZK or EUR, got {currency!r}.")
    return code


def _decimal(value: Any, name: str, default: Decimal | None = None) -> Decimal:
    if value is None and default is not None:
        return default
    try:
        # Shoptet sends decimal strings; str() also keeps a stray JSON number exact as written.
        return Decimal(str(value))
    except InvalidOperation:
        raise ShoptetError(f"Shoptet sent {name}={value!r}, which is not a decimal number.") from None


def _nullable(value: Any, name: str) -> Decimal | None:
    # Null where Shoptet's SDK declares the field nullable (discount lines): data, not an error.
    return None if value is None else _decimal(value, name)


def _time(value: Any) -> datetime:
    try:
        return parse_time(str(value))
    except ValueError:
        raise ShoptetError(f"Shoptet sent creationTime={value!r}, not a time with an offset.") from None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def _var_symbol(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # the API documents varSymbol as a number
    return str(value)


def parse_item(position: int, raw: JSONObject) -> InvoiceItemRecord:
    """An invoice line from `GET /api/invoices/{code}`'s `items[]`."""
    price = raw.get("itemPrice") or {}
    unit = raw.get("unitPrice") or {}
    return InvoiceItemRecord(
        position=position,
        item_type=raw.get("itemType") or "product",
        code=raw.get("code"),
        name=raw.get("name") or "",
        variant_name=raw.get("variantName"),
        amount=_nullable(raw.get("amount"), "amount"),
        unit=raw.get("amountUnit"),
        vat_rate=_decimal(price.get("vatRate"), "vatRate", Decimal(0)),
        unit_price_with_vat=_nullable(unit.get("withVat"), "unitPrice.withVat"),
        price_with_vat=_nullable(price.get("withVat"), "itemPrice.withVat"),
        price_without_vat=_nullable(price.get("withoutVat"), "itemPrice.withoutVat"),
        price_vat=_nullable(price.get("vat"), "itemPrice.vat"),
    )


NULLABLE_ITEM_FIELDS = {
    "amount": "amount",
    "unit_price_with_vat": "unitPrice.withVat",
    "price_with_vat": "itemPrice.withVat",
    "price_without_vat": "itemPrice.withoutVat",
    "price_vat": "itemPrice.vat",
}


def null_values(record: InvoiceRecord) -> str | None:
    """`line 3 (discount-coupon): amount, itemPrice.vat` for the lines with nulls; None when none."""
    lines = []
    for item in record.items:
        nulls = [wire for name, wire in NULLABLE_ITEM_FIELDS.items() if getattr(item, name) is None]
        if nulls:
            lines.append(f"line {item.position} ({item.item_type}): {', '.join(nulls)} null")
    return "; ".join(lines) or None


def parse_invoice(raw: JSONObject) -> InvoiceRecord:
    """A typed invoice from the detail of `GET /api/invoices/{code}` (exact decimals, UTC-aware times)."""
    price = raw.get("price") or {}
    billing = raw.get("billingAddress") or {}
    method = raw.get("billingMethod") or {}
    return InvoiceRecord(
        code=str(raw["code"]),
        var_symbol=_var_symbol(raw.get("varSymbol")),
        order_code=raw.get("orderCode"),
        currency=str(price.get("currencyCode") or ""),
        creation_time=_time(raw.get("creationTime")),
        tax_date=_date(raw.get("taxDate")),
        due_date=_date(raw.get("dueDate")),
        customer_name=billing.get("fullName"),
        customer_company=billing.get("company"),
        billing_method=method.get("name"),
        total_with_vat=_decimal(price.get("withVat"), "price.withVat"),
        total_without_vat=_decimal(price.get("withoutVat"), "price.withoutVat"),
        total_vat=_decimal(price.get("vat"), "price.vat", Decimal(0)),
        exchange_rate=_decimal(price.get("exchangeRate"), "price.exchangeRate", Decimal(1)),
        is_valid=bool(raw.get("isValid", True)),
        items=tuple(parse_item(n, item) for n, item in enumerate(raw.get("items") or [], start=1)),
    )


def list_invoice_codes(client: ShoptetClient, day: date, currency: str) -> list[str]:
    """Codes of the invoices created on `day` (Prague) in `currency`, in list order.

    The API has no currency filter: the list is filtered on `price.currencyCode` before the
    (costly) detail requests.
    """
    start, end = day_bounds(day)
    # Shoptet's creationTimeTo is inclusive and has whole seconds, so the half-open day ends for it
    # one second before the next midnight. Both ends go out in Prague time: Shoptet gets exactly
    # 00:00:00 and 23:59:59 with the day's own offset (e.g. +0200), as it always has.
    first, last = to_prague(start), to_prague(end - timedelta(seconds=1))
    return [
        str(item["code"])
        for item in client.list_invoices(first, last)
        if (item.get("price") or {}).get("currencyCode") == currency
    ]


def summarize(report: ImportReport, records: list[InvoiceRecord], result: UpsertResult) -> None:
    """Fill `report`'s counts and totals; totals cover the valid (not cancelled) invoices of the day."""
    report.fetched = len(records)
    report.imported, report.updated, report.unchanged = (
        len(result.imported),
        len(result.updated),
        len(result.unchanged),
    )
    valid = [r for r in records if r.is_valid]
    report.total_with_vat = sum((r.total_with_vat for r in valid), Decimal(0))
    report.total_without_vat = sum((r.total_without_vat for r in valid), Decimal(0))
    report.total_vat = sum((r.total_vat for r in valid), Decimal(0))
    # Stored as sent, but worth a look: the invoice's lines no longer add up to its totals.
    report.flagged = [f"{r.code}: {nulls}" for r in records if (nulls := null_values(r)) is not None]


def import_invoices(
    client: ShoptetClient, engine: Engine, day: date, currency: str, *, chunk_size: int = CHUNK_SIZE
) -> ImportReport:
    """Fetch, parse and upsert the `currency` invoices of `day`; safe to re-run.

    Details are fetched chunk by chunk (concurrently within the token's connection limit); each
    chunk is stored on a writer thread while the next one downloads, so the database work hides
    behind HTTP. Only one chunk waits for the writer, which bounds memory and surfaces a database
    error before the next chunk is fetched.
    """
    currency = check_currency(currency)
    report = ImportReport(day=day, currency=currency)
    timings = report.timings
    started = clock.perf_counter()
    codes = list_invoice_codes(client, day, currency)
    timings.http += clock.perf_counter() - started
    records: list[InvoiceRecord] = []
    result = UpsertResult()

    def store(chunk: list[InvoiceRecord]) -> None:
        began = clock.perf_counter()
        stored = InvoiceStore(engine).upsert(chunk)
        result.imported += stored.imported
        result.updated += stored.updated
        result.unchanged += stored.unchanged
        timings.database += clock.perf_counter() - began

    with ThreadPoolExecutor(1, thread_name_prefix="invoice-writer") as writer:
        pending: Future[None] | None = None
        for offset in range(0, len(codes), chunk_size):
            began = clock.perf_counter()
            details = client.get_invoices(codes[offset : offset + chunk_size])
            fetched = clock.perf_counter()
            chunk = [parse_invoice(raw) for raw in details]
            timings.http += fetched - began
            timings.parsing += clock.perf_counter() - fetched
            records += chunk
            if pending is not None:
                pending.result()
            pending = writer.submit(store, chunk)
        if pending is not None:
            pending.result()
    timings.total = clock.perf_counter() - started
    summarize(report, records, result)
    return report
