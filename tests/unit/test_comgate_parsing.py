"""Parsing of Comgate's transfer list and rows, the payout-account cross-check and the currency decision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.accounting.comgate_import import Payout, decide
from backoffice.integrations.comgate import (
    ComgateError,
    RowType,
    Transfer,
    currency_of_account,
    normalize_account,
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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-08-08 01:01:08", datetime(2023, 8, 7, 23, 1, 8, tzinfo=UTC)),  # the statement CSV
        ("27.03.2026 09:16", datetime(2026, 3, 27, 8, 16, tzinfo=UTC)),  # a portal export, winter time
        ("27.03.2026 09:16:05", datetime(2026, 3, 27, 8, 16, 5, tzinfo=UTC)),
        ("28.03.2026", datetime(2026, 3, 27, 23, 0, tzinfo=UTC)),  # a day alone: its Prague midnight
        ("2023-08-09", datetime(2023, 8, 8, 22, 0, tzinfo=UTC)),
        ("2026-03-27 09:16", datetime(2026, 3, 27, 8, 16, tzinfo=UTC)),
        ("-", None),  # the sum row's placeholder
    ],
)
def test_every_time_format_of_the_sources_is_read(raw: str, expected: datetime | None) -> None:
    assert parse_local_datetime(raw) == expected


def test_real_payer_variable_symbol_column_and_the_older_spellings_are_read() -> None:
    base = {"typ": 1, "Potvrzená částka": "129,00", "Převedená částka": "127,46", "Poplatek celkem": "1,54"}
    for label in (
        "Variabilní symbol platby",
        "Variabilni symbol platce",
        "Variabilní symbol plátce",
        "VS platby",
    ):
        assert parse_row({**base, label: "765787007"}).payer_variable_symbol == "765787007", label
    # The payout's own symbol is another column and never taken for the payer's.
    assert parse_row({**base, "Variabilní symbol převodu": "768606250"}).payer_variable_symbol is None


def test_a_date_that_cannot_be_read_names_the_row_and_the_column() -> None:
    item = {"typ": 1, "ID ComGate": "VOSC-ZTBJ-MFA1", "Datum zaplacení": "8/8/2023 1:01 AM"}
    with pytest.raises(ComgateError) as caught:
        parse_row(item, "transfer 768606250, row 3")
    message = caught.value.message
    assert "transfer 768606250, row 3" in message
    assert "VOSC-ZTBJ-MFA1" in message
    assert "'Datum zaplacení'" in message
    assert "8/8/2023 1:01 AM" in message


def test_an_amount_that_cannot_be_read_names_the_row_and_the_column() -> None:
    with pytest.raises(ComgateError, match=r"transfer 5, row 2, column 'Poplatek celkem': .*'1,54 Kč'"):
        parse_row({"typ": 1, "Poplatek celkem": "1,54 Kč"}, "transfer 5, row 2")


def test_the_sum_rows_dashes_read_as_empty() -> None:
    row = parse_row(
        {
            "typ": 5,
            "Merchant": "-",
            "Produkt": "suma",
            "Variabilní symbol platby": "-",
            "ID od klienta": "-",
            "Datum zaplacení": "",
            "Měna": "CZK",
            "Potvrzená částka": "367,00",
            "Převedená částka": "359,04",
            "Poplatek celkem": "7,96",
        }
    )
    assert (row.payer_variable_symbol, row.ref_id, row.paid_at, row.label) == (None, None, None, "suma")
    assert row.transferred_amount == row.confirmed_amount - row.fee


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


def test_the_fakes_rows_speak_the_statement_csvs_columns() -> None:
    fake = FakeComgate(seed=3)
    czk = fake.generate_day(date(2026, 11, 27), "CZK", var_symbols=["2026000001"]).wire_rows("m")
    eur = fake.generate_day(date(2026, 11, 27), "EUR", var_symbols=["2026000002"]).wire_rows("m")
    assert czk[0]["Variabilní symbol platby"] == "2026000001"
    assert "Variabilní symbol plátce" not in czk[0]
    assert "," in czk[0]["Potvrzená částka"] and "." not in czk[0]["Potvrzená částka"]
    assert (czk[-1]["Merchant"], czk[-1]["Produkt"]) == ("-", "suma")
    assert datetime.strptime(czk[0]["Datum zaplacení"], "%Y-%m-%d %H:%M:%S")
    assert datetime.strptime(eur[0]["Datum zaplacení"], "%d.%m.%Y %H:%M")
    assert {row["Měna"] for row in eur} == {"EUR"}
    assert "/" in fake.accounts["EUR"] and not fake.accounts["EUR"].startswith("CZ")


def test_a_czech_iban_and_its_domestic_number_are_one_account() -> None:
    assert normalize_account("CZ65 2010 0000 0029 0000 0000") == normalize_account("2900000000/2010")
    assert normalize_account("19-2000145399/0800") == normalize_account("000019-2000145399/0800")
    assert normalize_account("2900000000/2010") != normalize_account("2900000000/0300")


def payout(account: str, *currencies: str) -> Payout:
    """A payout to `account` with one payment row per currency given."""
    transfer = Transfer(1, date(2026, 11, 27), account, "281481891/0300", "768606250")
    rows = tuple(parse_row({"typ": 1, "Měna": c, "Potvrzená částka": "1,00"}) for c in currencies)
    return Payout(transfer, rows)


SETTINGS = Settings(
    comgate_payout_account_czk="2800000000/2010", comgate_payout_account_eur="CZ6520100000002900000000"
)


def test_the_rows_currency_decides_even_when_the_account_is_unknown() -> None:
    eur = payout("5637796002/5500", "EUR")  # a domestic account nobody configured
    decision = decide(eur, "EUR", SETTINGS)
    assert (decision.action, decision.currency) == ("import", "EUR")
    assert "none of the configured payout accounts" in decision.note
    assert decide(eur, "CZK", SETTINGS).action == "other currency"


def test_the_configured_iban_matches_the_domestic_account_comgate_prints() -> None:
    decision = decide(payout("2900000000/2010", "EUR"), "EUR", SETTINGS)
    assert (decision.action, decision.note) == ("import", "")


def test_an_account_that_contradicts_the_rows_is_noted_and_the_rows_win() -> None:
    decision = decide(payout("2800000000/2010", "EUR"), "EUR", SETTINGS)
    assert decision.action == "import"
    assert "configured CZK payout account, but the rows say EUR" in decision.note


@pytest.mark.parametrize(
    ("currencies", "account", "reason"),
    [
        (("CZK", "EUR"), "2800000000/2010", "several currencies"),
        ((), "5637796002/5500", "name no currency"),
        (("PLN",), "5637796002/5500", "PLN has no import"),
    ],
)
def test_a_payout_no_run_can_take_is_skipped_with_its_reason(
    currencies: tuple[str, ...], account: str, reason: str
) -> None:
    for currency in ("CZK", "EUR"):
        decision = decide(payout(account, *currencies), currency, SETTINGS)
        assert decision.action == "skip"
        assert reason in decision.note
        assert decision.row()["value"].startswith("SKIPPED: ")


def test_without_a_currency_in_the_rows_the_account_decides() -> None:
    decision = decide(payout("CZ65 2010 0000 0028 0000 0000"), "CZK", SETTINGS)
    assert (decision.action, decision.currency) == ("import", "CZK")


def test_payout_account_tells_the_currency() -> None:
    settings = Settings(comgate_payout_account_czk="2800000000/2010", comgate_payout_account_eur="CZ65 2010")
    assert currency_of_account("2800000000/2010", settings) == "CZK"
    assert currency_of_account("cz652010", settings) == "EUR"
    assert currency_of_account("0/0000", settings) is None
