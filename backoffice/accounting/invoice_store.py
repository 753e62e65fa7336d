"""Invoices and their items: upserted by invoice code, read back as plain records.

A re-import compares a hash of the imported content, so an unchanged invoice is not written at
all and a changed one is rewritten with its items. The bank matching's columns (`paid`,
`paid_at`, `paid_amount`) are never touched by an import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from backoffice.accounting.models import Invoice, InvoiceItem
from backoffice.dialects import Dialect, dialect_of

BATCH_SIZE = 500
INSERT_PAGE_SIZE = 100  # psycopg caches the parsing of statements up to 4 kB; pages of 100 rows stay cheap


@dataclass(frozen=True)
class InvoiceItemRecord:
    """One invoice line as imported (prices are the line totals unless named `unit_`)."""

    position: int
    item_type: str
    code: str | None
    name: str
    variant_name: str | None
    amount: Decimal | None  # None (like the prices) where Shoptet sent null, e.g. a discount line
    unit: str | None
    vat_rate: Decimal
    unit_price_with_vat: Decimal | None
    price_with_vat: Decimal | None
    price_without_vat: Decimal | None
    price_vat: Decimal | None


@dataclass(frozen=True)
class InvoiceRecord:
    """An invoice as imported from Shoptet."""

    code: str
    var_symbol: str | None
    order_code: str | None
    currency: str
    creation_time: datetime
    tax_date: date | None
    due_date: date | None
    customer_name: str | None
    customer_company: str | None
    billing_method: str | None
    total_with_vat: Decimal
    total_without_vat: Decimal
    total_vat: Decimal
    exchange_rate: Decimal
    is_valid: bool
    items: tuple[InvoiceItemRecord, ...] = ()

    def content_hash(self) -> str:
        """SHA-256 of every imported value, items included (what a re-import compares).

        The dataclass repr covers every field exactly (Decimal('521.00'), aware datetimes) and is
        several times cheaper than walking the fields; records are always parsed from Shoptet's
        strings, so the same invoice always gives the same text.
        """
        return hashlib.sha256(repr(self).encode()).hexdigest()


@dataclass
class UpsertResult:
    """Codes of the invoices inserted, rewritten because they changed, and left as they were."""

    imported: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


_INVOICE_COLUMNS = [f for f in InvoiceRecord.__dataclass_fields__ if f != "items"]
_ITEM_COLUMNS = list(InvoiceItemRecord.__dataclass_fields__)
# Columns an update rewrites: everything imported, never the bank matching's or `imported_at`.
_UPDATED_COLUMNS = [*_INVOICE_COLUMNS, "content_hash", "updated_at"]


def _insert_invoice(dialect: Dialect) -> Any:
    """INSERT … ON CONFLICT (code) DO UPDATE — the one statement that differs per dialect."""
    stmt = dialect.insert(Invoice)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Invoice.code], set_={c: getattr(stmt.excluded, c) for c in _UPDATED_COLUMNS}
    )
    return stmt.returning(Invoice.id, Invoice.code, sort_by_parameter_order=True)


class InvoiceStore:
    """Upserts invoices (with their items) by code and reads them back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self._insert = _insert_invoice(self.dialect)  # one statement, reused by every batch

    def upsert(
        self,
        records: Iterable[InvoiceRecord],
        *,
        now: datetime | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> UpsertResult:
        """Insert new invoices, rewrite changed ones (with their items), skip unchanged ones.

        Each batch of `batch_size` invoices is one transaction, so a failure leaves whole invoices.
        """
        now = now or datetime.now(UTC)
        result = UpsertResult()
        batch: list[InvoiceRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                self._upsert_batch(batch, now, result)
                batch = []
        if batch:
            self._upsert_batch(batch, now, result)
        return result

    def _upsert_batch(self, batch: Sequence[InvoiceRecord], now: datetime, result: UpsertResult) -> None:
        # Last one wins if the same code appears twice in one batch.
        by_code = {r.code: (r, r.content_hash()) for r in batch}
        with self.engine.begin() as conn:
            conn.execution_options(insertmanyvalues_page_size=INSERT_PAGE_SIZE)
            stored = dict(
                conn.execute(
                    select(Invoice.code, Invoice.content_hash).where(Invoice.code.in_(by_code))
                ).all()
            )
            changed = [(r, h) for code, (r, h) in by_code.items() if stored.get(code) != h]
            result.unchanged.extend(code for code, (_, h) in by_code.items() if stored.get(code) == h)
            if not changed:
                return
            rows = [
                {
                    **{c: getattr(r, c) for c in _INVOICE_COLUMNS},
                    "content_hash": h,
                    "paid": False,
                    "imported_at": now,
                    "updated_at": now,
                }
                for r, h in changed
            ]
            ids = {code: invoice_id for invoice_id, code in conn.execute(self._insert, rows)}
            # Items are replaced, not diffed: an invoice's lines change rarely and only together.
            conn.execute(delete(InvoiceItem).where(InvoiceItem.invoice_id.in_(list(ids.values()))))
            items = [
                {"invoice_id": ids[r.code], **{c: getattr(item, c) for c in _ITEM_COLUMNS}}
                for r, _ in changed
                for item in r.items
            ]
            if items:
                conn.execute(insert(InvoiceItem), items)
        for r, _ in changed:
            (result.updated if r.code in stored else result.imported).append(r.code)

    def load(self, codes: Iterable[str] | None = None) -> list[InvoiceRecord]:
        """Stored invoices (all, or those of `codes`) with their items, ordered by code."""
        query = select(*Invoice.__table__.c).order_by(Invoice.code)
        item_query = select(*InvoiceItem.__table__.c).order_by(InvoiceItem.invoice_id, InvoiceItem.position)
        if codes is not None:
            wanted = list(codes)
            query = query.where(Invoice.code.in_(wanted))
            item_query = item_query.join(Invoice).where(Invoice.code.in_(wanted))
        with self.engine.connect() as conn:
            invoices = conn.execute(query).mappings().all()
            items: dict[int, list[InvoiceItemRecord]] = {}
            for row in conn.execute(item_query).mappings():
                values = {f: row[f] for f in InvoiceItemRecord.__dataclass_fields__}
                items.setdefault(row["invoice_id"], []).append(InvoiceItemRecord(**values))
        return [
            InvoiceRecord(**{c: row[c] for c in _INVOICE_COLUMNS}, items=tuple(items.get(row["id"], [])))
            for row in invoices
        ]
