"""Parsing of Comgate's transfer list and transfer rows, and the payout-account → currency rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.integrations.comgate import (
    ComgateError,
    RowType,
    currency_of_account,
    parse_amount,
    parse_local_datetime,
    parse_row,
    parse_transfer,
)
from backoffice.integrations.fakes.comgate import FakeComgate
from backoffice.settings import Settings


def test_transfer_list_item_is_read() -> None:
    item = {
        "transferId": 5211530,
        "transferDate": "2019-07-25",
        "accountCounterparty": "0/0000",
        "accountOutgoing": "281481882/0300",
        "variableSymbol": "86616655",
    }
    transfer = parse_transfer(item)
    assert transfer.transfer_id == 5211530
    assert transfer.transfer_date == date(2019, 7, 25)
    assert transfer.account_outgoing == "281481882/0300"
    assert transfer.variable_symbol == "86616655"


def test_transfer_without_id_is_a_clear_error() -> None:
    with pytest.raises(ComgateError, match="cannot read"):
        parse_transfer({"transferDate": "2019-07-25"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("613,00", "613.00"),
        ("606.99", "606.99"),
        ("-1 250,50", "-1250.50"),
        (12, "12"),
        ("", "0"),
        (None, "0"),
    ],
)
def test_amounts_accept_comma_point_and_numbers(raw: object, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)


def test_a_non_number_amount_is_refused() -> None:
    with pytest.raises(ComgateError, match="not a number"):
        parse_amount("12 Kč")


def test_prague_local_time_becomes_utc() -> None:
    # 24 July: Prague is UTC+2 (summer time); 24 December: UTC+1.
    assert parse_local_datetime("2019-07-24 10:36:18") == datetime(2019, 7, 24, 8, 36, 18, tzinfo=UTC)
    assert parse_local_datetime("2019-12-24 10:00:00") == datetime(2019, 12, 24, 9, 0, tzinfo=UTC)
    assert parse_local_datetime("") is None


def test_row_keys_are_read_regardless_of_case_and_diacritics() -> None:
    row = parse_row(
        {
            "typ": "1",
            "ID ComGate": "AB12-CD34-EF56",
            "id od klienta": "OBJ123",
            "Variabilni symbol platce": "2026000123",
            "MĚNA": "CZK",
            "Potvrzená částka": "613,00",
            "Převedená částka": "606,99",
            "Poplatek celkem": "6,01",
            "Datum zaplacení": "2026-11-26 10:16:40",
            "Metoda": "Karta online",
        }
    )
    assert row.row_type is RowType.PAYMENT
    assert row.trans_id == "AB12-CD34-EF56"
    assert row.ref_id == "OBJ123"
    assert row.payer_variable_symbol == "2026000123"
    assert row.currency == "CZK"
    assert (row.confirmed_amount, row.transferred_amount, row.fee) == (
        Decimal("613.00"),
        Decimal("606.99"),
        Decimal("6.01"),
    )
    assert row.paid_at == datetime(2026, 11, 26, 9, 16, 40, tzinfo=UTC)


def test_unknown_row_type_is_refused() -> None:
    with pytest.raises(ComgateError, match="unknown type"):
        parse_row({"typ": 9})


def test_the_fakes_wire_rows_parse_back_to_its_data() -> None:
    fake = FakeComgate(seed=3)
    transfer = fake.generate_day(date(2026, 12, 1), "EUR", var_symbols=["2026000001"], chargeback=True)
    rows = [parse_row(item) for item in transfer.wire_rows(fake.merchant)]
    assert [r.row_type for r in rows][-1] is RowType.SUMMARY
    assert {RowType.PAYMENT, RowType.REFUND, RowType.MONTHLY_FEE, RowType.OTHER_FEE} <= {
        r.row_type for r in rows
    }
    for parsed, original in zip(rows, transfer.rows, strict=False):
        assert parsed.confirmed_amount == original.confirmed_amount
        assert parsed.fee == original.fee
        assert parsed.transferred_amount == original.confirmed_amount - original.fee
    summary = rows[-1]
    assert summary.transferred_amount == sum(r.transferred_amount for r in rows[:-1])


def test_payout_account_tells_the_currency() -> None:
    settings = Settings(comgate_payout_account_czk="2800000000/2010", comgate_payout_account_eur="CZ65 2010")
    assert currency_of_account("2800000000/2010", settings) == "CZK"
    assert currency_of_account("cz652010", settings) == "EUR"
    assert currency_of_account("0/0000", settings) is None
