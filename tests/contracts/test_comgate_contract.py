"""Comgate contracts written from its SDK and independent clients (tests/contracts/comgate/).

Every response the fake Comgate sends over HTTP validates against them, and our client reads the
examples those sources give. The source of each schema is its "$comment".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from backoffice.integrations.comgate import RowType, parse_row, parse_transfer
from backoffice.integrations.fakes.comgate import FakeComgate
from tests.servers import serve

CONTRACTS = Path(__file__).parent / "comgate"
DAY = date(2026, 12, 1)  # the 1st: the payout carries a monthly fee too


def schema(name: str) -> Draft202012Validator:
    """The validator of `comgate/<name>.schema.json`, itself checked against its metaschema."""
    document = json.loads((CONTRACTS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


STATEMENT_COLUMNS: list[str] = json.loads((CONTRACTS / "statement-columns.json").read_text("utf-8"))[
    "columns"
]

# Examples of transferList items the sources give (values from the files named in the schema's $comment).
TRANSFER_EXAMPLES = [
    # comgate-payments/sdk-php src/Entity/Transfer.php
    {
        "transferId": 1444754,
        "transferDate": "2023-02-07",
        "accountCounterparty": "0/0000",
        "accountOutgoing": "1/0000",
        "variableSymbol": "0123456789",
    },
    # sinfin/comgate_ruby test/comgate/test_gateway.rb
    {
        "transferId": 33459010,
        "transferDate": "2023-04-14",
        "accountCounterparty": "5637796002/5500",
        "accountOutgoing": "242398277/0300",
        "variableSymbol": "675881954",
    },
]

# Two rows of the statement CSV in sinfin/comgate_ruby test/fixtures/csvs.zip (csv1.csv): a card payment
# and the sum row, as singleTransfer sends them (the CSV's labels plus `typ`).
CSV_PAYMENT = dict(
    zip(
        ["typ", *STATEMENT_COLUMNS],
        [
            1,
            "123456",
            "2023-08-08 01:01:03",
            "2023-08-08 01:01:08",
            "2023-08-09",
            "",
            "VOSC-ZTBJ-MFA1",
            "Karta online",
            "Objednávka",
            "2306450 \u2013 jh@gmail.com",
            "jh@gmail.com",
            "765787007",
            "768606250",
            "2306450",
            "CZK",
            "129,00",
            "127,46",
            "1,54",
            "0,26",
            "0,77",
            "0,51",
            "EU_CONSUMER",
        ],
        strict=True,
    )
)
CSV_SUM = dict(
    zip(
        ["typ", *STATEMENT_COLUMNS],
        [
            5,
            "-",
            "",
            "",
            "2023-08-08",
            "",
            "",
            "",
            "suma",
            "-",
            "-",
            "-",
            "768606250",
            "-",
            "CZK",
            "367,00",
            "359,04",
            "7,96",
            "1,75",
            "5,98",
            "0,23",
            "",
        ],
        strict=True,
    )
)
# A portal export's Czech day-first times (see the singleTransfer schema's $comment).
CZECH_DATES_PAYMENT = {
    **CSV_PAYMENT,
    "Datum založení": "27.03.2026 09:15",
    "Datum zaplacení": "27.03.2026 09:16",
}


@pytest.fixture
def fake() -> FakeComgate:
    """A fake Comgate with a CZK and a EUR payout (all row types) on DAY."""
    fake = FakeComgate(merchant="shop-1", secret="s3cret", seed=5)
    fake.generate_day(DAY, "CZK", var_symbols=["2026000101"], chargeback=True)
    fake.generate_day(DAY, "EUR", var_symbols=["2026000201"], chargeback=True)
    return fake


@pytest.fixture
def http(fake: FakeComgate) -> Iterator[httpx.Client]:
    """An HTTP client with the fake's credentials, talking to it over loopback."""
    with serve(fake.app) as url, httpx.Client(base_url=url, auth=("shop-1", "s3cret")) as client:
        yield client


def test_every_success_the_fake_sends_validates(fake: FakeComgate, http: httpx.Client) -> None:
    listed = http.get(f"/v2.0/transferList/date/{DAY.isoformat()}.json")
    assert listed.status_code == 200
    schema("transferList").validate(listed.json())
    assert len(listed.json()) == 2
    rows_schema = schema("singleTransfer")
    for item in listed.json():
        rows = http.get(f"/v2.0/singleTransfer/transferId/{item['transferId']}.json")
        assert rows.status_code == 200
        rows_schema.validate(rows.json())
        assert {row["typ"] for row in rows.json()} == {1, 2, 3, 4, 5}
        for row in rows.json():
            assert list(row) == ["typ", *STATEMENT_COLUMNS]
    schema("transferList").validate(http.get("/v2.0/transferList/date/2026-01-02.json").json())


def test_every_error_the_fake_sends_validates(fake: FakeComgate, http: httpx.Client) -> None:
    errors = schema("error")
    fake.fail_next(429, retry_after=1)
    fake.fail_next(503)
    answers = [
        http.get(f"/v2.0/transferList/date/{DAY.isoformat()}.json"),
        http.get(f"/v2.0/transferList/date/{DAY.isoformat()}.json"),
        http.get("/v2.0/transferList/date/2026-13-01.json"),
        http.get("/v2.0/singleTransfer/transferId/42.json"),
        http.get("/v2.0/singleTransfer/transferId/42.json", auth=("shop-1", "wrong")),
    ]
    assert [a.status_code for a in answers] == [429, 503, 400, 404, 401]
    for answer in answers:
        errors.validate(answer.json())


def test_the_sources_examples_satisfy_the_contracts() -> None:
    schema("transferList").validate(TRANSFER_EXAMPLES)
    schema("singleTransfer").validate([CSV_PAYMENT, CSV_SUM, CZECH_DATES_PAYMENT])
    schema("error").validate({"code": 1400, "message": "Invalid request"})


def test_our_client_reads_the_sources_transfer_examples() -> None:
    transfers = [parse_transfer(item) for item in TRANSFER_EXAMPLES]
    assert [(t.transfer_id, t.transfer_date) for t in transfers] == [
        (1444754, date(2023, 2, 7)),
        (33459010, date(2023, 4, 14)),
    ]
    assert transfers[0].variable_symbol == "0123456789"  # a leading zero survives
    assert transfers[1].account_counterparty == "5637796002/5500"


def test_our_client_reads_the_statement_csvs_rows() -> None:
    payment, total = parse_row(CSV_PAYMENT), parse_row(CSV_SUM)
    assert payment.row_type is RowType.PAYMENT
    assert (payment.trans_id, payment.ref_id, payment.payer_variable_symbol) == (
        "VOSC-ZTBJ-MFA1",
        "2306450",
        "765787007",
    )
    assert (payment.confirmed_amount, payment.transferred_amount, payment.fee) == (
        Decimal("129.00"),
        Decimal("127.46"),
        Decimal("1.54"),
    )
    assert payment.currency == "CZK"
    assert payment.paid_at == datetime(2023, 8, 7, 23, 1, 8, tzinfo=UTC)  # Prague summer time
    assert total.row_type is RowType.SUMMARY
    assert (total.payer_variable_symbol, total.ref_id, total.label) == (None, None, "suma")
    assert total.transferred_amount == total.confirmed_amount - total.fee
    czech = parse_row(CZECH_DATES_PAYMENT)
    assert czech.paid_at == datetime(2026, 3, 27, 8, 16, tzinfo=UTC)


def _values(row: dict[str, Any]) -> list[Any]:
    return [row[column] for column in STATEMENT_COLUMNS]


def test_the_fakes_sum_row_looks_like_the_real_one(fake: FakeComgate) -> None:
    summary = fake.transfers_on(DAY, "CZK")[0].wire_rows("shop-1")[-1]
    real = _values(CSV_SUM)
    ours = _values(summary)
    for column in (
        "Merchant",
        "Produkt",
        "Popis",
        "E-mail plátce",
        "Variabilní symbol platby",
        "ID od klienta",
    ):
        index = STATEMENT_COLUMNS.index(column)
        assert ours[index] == real[index], column
