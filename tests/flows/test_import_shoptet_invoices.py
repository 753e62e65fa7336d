"""import-shoptet-invoices under the Prefect harness, against the fake Shoptet over HTTP, on both DBs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from prefect.artifacts import Artifact
from sqlalchemy import Engine, func, select

from backoffice.accounting.models import Invoice, InvoiceItem
from backoffice.accounting.shoptet_import import ImportReport
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.settings import Settings
from flows.import_shoptet_invoices import import_shoptet_invoices

pytestmark = pytest.mark.usefixtures("prefect_server")

DAY = date(2024, 5, 6)


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with 60 invoices on DAY and on the days around it."""
    return FakeShoptet(21, days=[date(2024, 5, 5), DAY, date(2024, 5, 7)], invoices_per_day=60)


def _expected(fake: FakeShoptet, currency: str) -> dict[str, tuple[Any, ...]]:
    """The fake's invoices of DAY in `currency`, read straight from its wire data (not our parser)."""
    rows = {}
    for raw in fake.state.invoices.values():
        price = raw["price"]
        if raw["taxDate"] != DAY.isoformat() or price["currencyCode"] != currency:
            continue
        items = tuple(
            (
                i["code"],
                i["name"],
                Decimal(i["amount"]),
                Decimal(i["itemPrice"]["withVat"]),
                Decimal(i["itemPrice"]["withoutVat"]),
                Decimal(i["itemPrice"]["vatRate"]),
            )
            for i in raw["items"]
        )
        rows[raw["code"]] = (
            str(raw["varSymbol"]),
            raw["orderCode"],
            datetime.strptime(raw["creationTime"], "%Y-%m-%dT%H:%M:%S%z"),
            raw["billingAddress"]["fullName"],
            Decimal(price["withVat"]),
            Decimal(price["withoutVat"]),
            Decimal(price["vat"]),
            Decimal(price["exchangeRate"]),
            raw["isValid"],
            items,
        )
    return rows


def _stored(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        invoices = conn.execute(select(*Invoice.__table__.c)).all()
        items = conn.execute(select(*InvoiceItem.__table__.c).order_by(InvoiceItem.position)).all()
    by_invoice: dict[int, list[tuple[Any, ...]]] = {}
    for i in items:
        by_invoice.setdefault(i.invoice_id, []).append(
            (i.code, i.name, i.amount, i.price_with_vat, i.price_without_vat, i.vat_rate)
        )
    return {
        r.code: (
            r.var_symbol,
            r.order_code,
            r.creation_time,
            r.customer_name,
            r.total_with_vat,
            r.total_without_vat,
            r.total_vat,
            r.exchange_rate,
            r.is_valid,
            tuple(by_invoice[r.id]),
        )
        for r in invoices
    }


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Invoice)).scalar_one(),
            conn.execute(select(func.count()).select_from(InvoiceItem)).scalar_one(),
        )


@pytest.mark.usefixtures("use_settings")
def test_imports_exactly_the_days_invoices_of_the_currency(engine: Engine, fake: FakeShoptet) -> None:
    report = import_shoptet_invoices(currency="CZK", day=DAY)
    expected = _expected(fake, "CZK")
    assert isinstance(report, ImportReport)
    assert 0 < len(expected) < 60  # the other currency and the other days stay out
    assert _stored(engine) == expected
    assert (report.imported, report.updated, report.unchanged) == (len(expected), 0, 0)
    valid = [row for row in expected.values() if row[8]]
    assert report.total_with_vat == sum(row[4] for row in valid)
    assert report.total_without_vat == sum(row[5] for row in valid)

    artifact = Artifact.get("shoptet-invoices-czk")
    assert artifact is not None
    table = json.loads(str(artifact.data))
    assert {"measure": "invoices imported (new)", "value": str(len(expected))} in table
    assert {"measure": "total with VAT (CZK)", "value": str(report.total_with_vat)} in table


@pytest.mark.usefixtures("use_settings")
def test_a_rerun_adds_nothing_and_updates_what_changed(engine: Engine, fake: FakeShoptet) -> None:
    first = import_shoptet_invoices(currency="EUR", day=DAY)
    assert isinstance(first, ImportReport)
    counts = _counts(engine)

    again = import_shoptet_invoices(currency="EUR", day=DAY)
    assert isinstance(again, ImportReport)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, first.imported)
    assert _counts(engine) == counts

    code = next(iter(_expected(fake, "EUR")))
    fake.state.invoices[code]["items"][0]["name"] = "Přejmenovaná položka"
    fake.state.invoices[code]["billingAddress"]["fullName"] = "Eva Veselá"
    changed = import_shoptet_invoices(currency="EUR", day=DAY)
    assert isinstance(changed, ImportReport)
    assert (changed.imported, changed.updated) == (0, 1)
    assert _counts(engine) == counts
    assert _stored(engine) == _expected(fake, "EUR")


@pytest.mark.usefixtures("use_settings")
def test_429_and_5xx_are_retried_and_succeed(engine: Engine, fake: FakeShoptet) -> None:
    fake.fail_next("/api/invoices", 503, times=1, method="GET")
    fake.fail_next("/api/invoices/", 429, times=2, retry_after=1)
    fake.fail_next("/api/invoices/", 502, times=1)
    report = import_shoptet_invoices(currency="CZK", day=DAY)
    assert isinstance(report, ImportReport)
    assert _stored(engine) == _expected(fake, "CZK")
    assert fake.state.count("GET", "/api/invoices", 503) == 1
    assert fake.state.count("GET", "/api/invoices/", 429) == 2
    assert fake.state.count("GET", "/api/invoices/", 502) == 1


def test_a_missing_token_fails_naming_the_setting(
    use_settings: Settings, monkeypatch: pytest.MonkeyPatch, engine: Engine, fake: FakeShoptet
) -> None:
    from backoffice.settings import get_settings

    monkeypatch.setenv("BACKOFFICE_SHOPTET_API_TOKEN", "")  # empty also overrides a .env file
    get_settings.cache_clear()
    state = import_shoptet_invoices(currency="CZK", day=DAY, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="BACKOFFICE_SHOPTET_API_TOKEN"):
        state.result()
    assert fake.state.requests == []  # failed before talking to Shoptet
    assert _counts(engine) == (0, 0)


@pytest.fixture
def token_block() -> Iterator[None]:
    """The Prefect Secret block `shoptet-api-token` holding the fake's token, deleted afterwards."""
    from prefect.blocks.system import Secret

    Secret(value=DEFAULT_TOKEN).save("shoptet-api-token", overwrite=True)
    yield
    Secret.delete("shoptet-api-token")


@pytest.mark.usefixtures("token_block")
def test_the_secret_block_wins_over_the_environment(
    use_settings: Settings, monkeypatch: pytest.MonkeyPatch, engine: Engine, fake: FakeShoptet
) -> None:
    from backoffice.settings import get_settings

    monkeypatch.setenv("BACKOFFICE_SHOPTET_API_TOKEN", "a-stale-token")
    get_settings.cache_clear()
    report = import_shoptet_invoices(currency="CZK", day=DAY)
    assert isinstance(report, ImportReport)
    assert report.imported == len(_expected(fake, "CZK"))
    assert fake.state.count("GET", "/api/invoices", 403) == 0


@pytest.mark.usefixtures("use_settings")
def test_a_null_amount_is_stored_and_flagged_and_the_day_goes_on(engine: Engine, fake: FakeShoptet) -> None:
    # Before: one discount line with amount null failed the whole day (ShoptetError amount=None).
    expected = _expected(fake, "CZK")  # read before the null line: the helper wants amounts
    code = next(iter(expected))
    raw = fake.state.invoices[code]
    nulls = {"withVat": None, "withoutVat": None, "vat": None, "vatRate": "21.00"}
    line = {"itemId": 99, "itemType": "discount-coupon", "code": "SLEVA", "name": "Sleva 10 %"}
    raw["items"].append({**line, "amount": None, "itemPrice": nulls, "unitPrice": dict(nulls)})
    report = import_shoptet_invoices(currency="CZK", day=DAY)
    assert isinstance(report, ImportReport)
    assert report.imported == len(expected)
    with engine.connect() as conn:
        stored = conn.execute(select(InvoiceItem).join(Invoice).where(Invoice.code == code)).all()
    assert (stored[-1].amount, stored[-1].price_with_vat, stored[-1].price_vat) == (None, None, None)
    position = len(raw["items"])
    assert report.flagged == [
        f"{code}: line {position} (discount-coupon): amount, unitPrice.withVat, "
        "itemPrice.withVat, itemPrice.withoutVat, itemPrice.vat null"
    ]
    artifact = Artifact.get("shoptet-invoices-czk")
    assert artifact is not None
    table = json.loads(str(artifact.data))
    assert {"measure": "flagged invoice", "value": report.flagged[0]} in table
