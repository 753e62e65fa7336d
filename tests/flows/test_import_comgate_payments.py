"""import-comgate-payments under the Prefect harness, against the fake Comgate over HTTP, on both DBs."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from prefect.artifacts import Artifact
from sqlalchemy import Engine, func, insert, select

from backoffice.accounting.comgate_import import ImportResult
from backoffice.accounting.models import BankStatement, BankStatementLine, Invoice
from backoffice.integrations.fakes.comgate import FakeComgate
from backoffice.integrations.fakes.shoptet_data import generate_invoices
from backoffice.settings import Settings, get_settings
from flows.import_comgate_payments import import_comgate_payments
from tests.servers import serve

pytestmark = pytest.mark.usefixtures("prefect_server")

ISSUED = date(2026, 11, 26)
DAY = date(2026, 11, 27)  # the payout day: the invoices of ISSUED are paid out then


@pytest.fixture
def shoptet_invoices() -> list[dict[str, Any]]:
    """The fake Shoptet's invoices of ISSUED (its wire format)."""
    return list(generate_invoices(5, [ISSUED], 20).values())


@pytest.fixture
def fake(shoptet_invoices: list[dict[str, Any]]) -> FakeComgate:
    """A fake Comgate paying the fake Shoptet's Comgate invoices on DAY."""
    fake = FakeComgate(merchant="shop-1", secret="s3cret", seed=11)
    fake.seed_from_invoices(shoptet_invoices)
    return fake


@pytest.fixture
def comgate_url(fake: FakeComgate) -> Iterator[str]:
    """The fake Comgate served on loopback."""
    with serve(fake.app) as url:
        yield url


@pytest.fixture
def settings(make_settings: Callable[..., Settings], comgate_url: str, fake: FakeComgate) -> Settings:
    """Test settings pointing at the fake Comgate with its credentials and payout accounts."""
    return make_settings(
        comgate_base_url=comgate_url,
        comgate_merchant="shop-1",
        comgate_secret="s3cret",
        comgate_payout_account_czk=fake.accounts["CZK"],
        comgate_payout_account_eur=fake.accounts["EUR"],
    )


@pytest.fixture
def invoices(engine: Engine, shoptet_invoices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fake Shoptet's invoices stored as the Shoptet import stores them, keyed by var symbol."""
    with engine.begin() as conn:
        for invoice in shoptet_invoices:
            price = invoice["price"]
            conn.execute(
                insert(Invoice).values(
                    code=invoice["code"],
                    var_symbol=str(invoice["varSymbol"]),
                    order_code=invoice["orderCode"],
                    currency=price["currencyCode"],
                    creation_time=datetime.strptime(invoice["creationTime"], "%Y-%m-%dT%H:%M:%S%z"),
                    total_with_vat=Decimal(price["withVat"]),
                    total_without_vat=Decimal(price["withoutVat"]),
                    total_vat=Decimal(price["vat"]),
                    exchange_rate=Decimal(price["exchangeRate"]),
                    is_valid=invoice["isValid"],
                    paid=False,
                    content_hash="0" * 64,
                    imported_at=datetime.now().astimezone(),
                    updated_at=datetime.now().astimezone(),
                )
            )
    return {str(i["varSymbol"]): i for i in shoptet_invoices}


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(BankStatement)).scalar_one(),
            conn.execute(select(func.count()).select_from(BankStatementLine)).scalar_one(),
        )


@pytest.mark.usefixtures("use_settings")
def test_import_matches_the_fake_and_a_rerun_adds_nothing(
    engine: Engine, fake: FakeComgate, invoices: dict[str, dict[str, Any]]
) -> None:
    transfer = fake.transfers_on(DAY, "CZK")[0]
    paid_symbols = {r.payer_variable_symbol for r in transfer.rows if r.payer_variable_symbol in invoices}
    assert paid_symbols, "the fake Shoptet data should contain Comgate-paid CZK invoices"

    result = import_comgate_payments("CZK", DAY)

    assert isinstance(result, ImportResult)
    assert (result.transfers, result.new_transfers, result.lines) == (1, 1, len(transfer.rows))
    assert result.matched == len(paid_symbols)
    assert result.unmatched == sum(1 for r in transfer.rows if r.row_type == 1) - len(paid_symbols)
    assert result.fees == transfer.summary().fee
    with engine.connect() as conn:
        statement = conn.execute(select(BankStatement)).one()
        lines = conn.execute(select(BankStatementLine).order_by(BankStatementLine.position)).all()
        paid = {
            row.var_symbol: row for row in conn.execute(select(Invoice).where(Invoice.paid.is_(True))).all()
        }
    assert statement.transfer_id == transfer.transfer_id
    assert statement.total_transferred == transfer.summary().transferred_amount
    assert [(line.amount, line.fee, line.payment_id or "") for line in lines] == [
        (r.confirmed_amount, r.fee, r.trans_id) for r in transfer.rows
    ]
    assert set(paid) == paid_symbols
    for vs in paid_symbols:
        assert paid[vs].paid_amount == Decimal(invoices[vs]["price"]["toPay"])

    before = counts(engine)
    again = import_comgate_payments("CZK", DAY)
    assert isinstance(again, ImportResult)
    assert (again.new_transfers, again.new_lines, again.matched_now) == (0, 0, 0)
    assert counts(engine) == before


@pytest.mark.usefixtures("use_settings", "invoices")
def test_429_and_5xx_are_retried_and_the_import_succeeds(engine: Engine, fake: FakeComgate) -> None:
    fake.fail_next(429, retry_after=1)
    fake.fail_next(503, times=2)

    result = import_comgate_payments("EUR", DAY)

    assert isinstance(result, ImportResult)
    assert result.transfers == 1
    statuses = [status for _, status in fake.requests]
    assert statuses[:4] == [429, 503, 503, 200]
    assert counts(engine)[1] == len(fake.transfers_on(DAY, "EUR")[0].rows)


def artifact_rows(key: str) -> dict[str, str]:
    """The figure → value rows of the latest table artifact `key`."""
    artifact = Artifact.get(key)  # sync here; the Coroutine arm is for async callers
    assert artifact is not None and not isinstance(artifact, Coroutine)
    return {row["figure"]: row["value"] for row in json.loads(str(artifact.data))}


@pytest.mark.usefixtures("use_settings", "invoices")
def test_a_eur_payout_on_an_unexpected_account_is_imported_and_an_unknown_one_is_reported(
    engine: Engine, fake: FakeComgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings hold the IBAN of another account; Comgate pays EUR to a domestic number.
    monkeypatch.setenv("BACKOFFICE_COMGATE_PAYOUT_ACCOUNT_EUR", "CZ6508000000192000145399")
    get_settings.cache_clear()
    fake.accounts["PLN"] = "3000000000/2010"
    pln = fake.generate_day(DAY, "PLN", unmatched=1, refunds=0, chargeback=False)
    eur = fake.transfers_on(DAY, "EUR")[0]

    result = import_comgate_payments("EUR", DAY)

    assert isinstance(result, ImportResult)
    assert result.transfers == 1
    rows = artifact_rows("comgate-payments-eur")
    assert rows[f"payout {eur.transfer_id} to 2900000000/2010"].startswith("imported: account is none of")
    assert rows[f"payout {pln.transfer_id} to 3000000000/2010"] == (
        "SKIPPED: account is none of the configured payout accounts (rows say PLN); "
        "currency PLN has no import; book it by hand"
    )
    czk_result = import_comgate_payments("CZK", DAY)
    assert isinstance(czk_result, ImportResult)
    czk_rows = artifact_rows("comgate-payments-czk")
    assert czk_rows[f"payout {eur.transfer_id} to 2900000000/2010"].startswith("left to the EUR run")
    assert czk_rows[f"payout {pln.transfer_id} to 3000000000/2010"].startswith("SKIPPED: ")
    with engine.connect() as conn:
        currencies = sorted(conn.execute(select(BankStatement.currency)).scalars())
    assert currencies == ["CZK", "EUR"]


@pytest.mark.usefixtures("use_settings")
def test_a_missing_credential_fails_at_once_naming_it(
    fake: FakeComgate, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKOFFICE_COMGATE_MERCHANT")
    get_settings.cache_clear()

    state = import_comgate_payments("CZK", DAY, return_state=True)

    assert state.is_failed()
    assert "BACKOFFICE_COMGATE_MERCHANT" in str(state.message)
    assert fake.requests == []
    assert counts(engine) == (0, 0)


@pytest.mark.usefixtures("use_settings")
def test_an_unknown_currency_is_refused(fake: FakeComgate) -> None:
    state = import_comgate_payments("USD", DAY, return_state=True)

    assert state.is_failed()
    assert "Unknown currency 'USD'" in str(state.message)
    assert fake.requests == []


@pytest.fixture
def comgate_blocks() -> Iterator[None]:
    """Prefect Secret blocks `comgate-merchant` / `comgate-secret` with the fake's credentials."""
    from prefect.blocks.system import Secret

    Secret(value="shop-1").save("comgate-merchant", overwrite=True)
    Secret(value="s3cret").save("comgate-secret", overwrite=True)
    yield
    Secret.delete("comgate-merchant")
    Secret.delete("comgate-secret")


@pytest.mark.usefixtures("use_settings", "comgate_blocks")
def test_the_secret_blocks_win_over_the_environment(
    fake: FakeComgate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKOFFICE_COMGATE_MERCHANT")
    monkeypatch.setenv("BACKOFFICE_COMGATE_SECRET", "a-stale-secret")
    get_settings.cache_clear()

    result = import_comgate_payments("CZK", DAY)

    assert isinstance(result, ImportResult)
    assert result.transfers == 1
    assert 401 not in [status for _, status in fake.requests]
