"""Parsing Shoptet invoice details into typed records with exact decimals."""

from __future__ import annotations

import copy
import random
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.accounting.shoptet_import import check_currency, null_values, parse_invoice
from backoffice.errors import ValidationFailed
from backoffice.integrations.fakes.shoptet_data import generate_invoice
from backoffice.integrations.shoptet import JSONObject, ShoptetError


@pytest.fixture
def raw() -> JSONObject:
    """A realistic invoice detail in Shoptet's wire format, with fixed awkward prices."""
    invoice = generate_invoice(random.Random(4), "2024000042", date(2024, 5, 6))
    invoice["creationTime"] = "2024-05-06T10:15:00+0200"
    invoice["price"].update(withVat="0.30", withoutVat="0.10", vat="0.20", exchangeRate="25.12345678")
    invoice["price"]["currencyCode"] = "EUR"
    return invoice


def test_invoice_fields(raw: JSONObject) -> None:
    record = parse_invoice(raw)
    assert record.code == "2024000042"
    assert record.var_symbol == "2024000042"
    assert record.order_code == "O2024000042"
    assert record.currency == "EUR"
    assert record.creation_time == datetime(2024, 5, 6, 8, 15, tzinfo=UTC)
    assert record.tax_date == date(2024, 5, 6)
    assert record.due_date == date(2024, 5, 20)
    assert record.customer_name == raw["billingAddress"]["fullName"]
    assert record.billing_method == raw["billingMethod"]["name"]
    assert record.is_valid is raw["isValid"]


def test_prices_are_exact_decimals(raw: JSONObject) -> None:
    record = parse_invoice(raw)
    assert record.total_with_vat == Decimal("0.30")
    assert record.total_without_vat + record.total_vat == record.total_with_vat  # 0.1 + 0.2, exactly
    assert record.exchange_rate == Decimal("25.12345678")


def test_items_keep_order_and_prices(raw: JSONObject) -> None:
    record = parse_invoice(raw)
    assert [i.position for i in record.items] == list(range(1, len(raw["items"]) + 1))
    for item, wire in zip(record.items, raw["items"], strict=True):
        assert item.code == wire["code"]
        assert item.name == wire["name"]
        assert item.amount == Decimal(wire["amount"])
        assert item.vat_rate in (Decimal(21), Decimal(12))
        assert item.price_with_vat == Decimal(wire["itemPrice"]["withVat"])
        assert item.price_without_vat + item.price_vat == item.price_with_vat


@pytest.mark.parametrize(
    ("wire", "stored"),
    [(2024000042, "2024000042"), (2024000042.0, "2024000042"), ("0042", "0042"), (None, None), ("", None)],
)
def test_var_symbol_is_text(raw: JSONObject, wire: object, stored: str | None) -> None:
    raw["varSymbol"] = wire
    assert parse_invoice(raw).var_symbol == stored


def test_a_price_that_is_not_a_number_is_a_clear_error(raw: JSONObject) -> None:
    raw["price"]["withVat"] = "12,50"
    with pytest.raises(ShoptetError, match=r"price.withVat='12,50'"):
        parse_invoice(raw)


def test_content_hash_changes_with_any_item_price(raw: JSONObject) -> None:
    changed = copy.deepcopy(raw)
    changed["items"][0]["itemPrice"]["withVat"] = "999.99"
    assert parse_invoice(raw).content_hash() == parse_invoice(copy.deepcopy(raw)).content_hash()
    assert parse_invoice(raw).content_hash() != parse_invoice(changed).content_hash()


def test_content_hash_covers_the_invoice_fields(raw: JSONObject) -> None:
    changed = copy.deepcopy(raw)
    changed["billingAddress"]["fullName"] = "Eva Veselá"
    assert parse_invoice(raw).content_hash() != parse_invoice(changed).content_hash()


@pytest.mark.parametrize(("given", "code"), [("CZK", "CZK"), ("eur", "EUR"), (" czk ", "CZK")])
def test_currency_codes_are_normalized(given: str, code: str) -> None:
    assert check_currency(given) == code


@pytest.mark.parametrize("given", ["", "KČ", "EURO", "12"])
def test_bad_currency_is_refused(given: str) -> None:
    with pytest.raises(ValidationFailed, match="3-letter"):
        check_currency(given)


def test_a_creation_time_without_offset_is_a_clear_error(raw: JSONObject) -> None:
    raw["creationTime"] = "2024-05-06 10:15"
    with pytest.raises(ShoptetError, match="creationTime='2024-05-06 10:15'"):
        parse_invoice(raw)


def test_null_amount_and_prices_on_a_discount_line_are_kept_as_null(raw: JSONObject) -> None:
    # Before: ShoptetError "Shoptet sent amount=None" aborted the whole day's import.
    raw["items"].append(
        {
            "itemId": 99,
            "itemType": "discount-coupon",
            "code": "SLEVA10",
            "name": "Sleva 10 %",
            "amount": None,
            "itemPrice": {"withVat": None, "withoutVat": None, "vat": None, "vatRate": "21.00"},
            "unitPrice": {"withVat": None, "withoutVat": None, "vat": None, "vatRate": "21.00"},
        }
    )
    record = parse_invoice(raw)
    line = record.items[-1]
    assert (line.amount, line.price_with_vat, line.price_without_vat, line.price_vat) == (None,) * 4
    assert line.unit_price_with_vat is None and line.vat_rate == Decimal(21)
    assert null_values(record) == (
        f"line {len(raw['items'])} (discount-coupon): amount, unitPrice.withVat, itemPrice.withVat, "
        "itemPrice.withoutVat, itemPrice.vat null"
    )
    assert null_values(parse_invoice({**raw, "items": raw["items"][:-1]})) is None
