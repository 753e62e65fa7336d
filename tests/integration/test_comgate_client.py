"""The Comgate client against the fake Comgate over real HTTP: data, retries, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date
from decimal import Decimal

import pytest

from backoffice.calendar import PRAGUE
from backoffice.integrations.comgate import ComgateClient, ComgateCredentials, ComgateError, RowType
from backoffice.integrations.fakes.comgate import FakeComgate
from tests.servers import serve

DAY = date(2026, 11, 27)


@pytest.fixture
def fake() -> FakeComgate:
    """A fake Comgate with one CZK and one EUR payout on DAY."""
    fake = FakeComgate(merchant="shop-1", secret="s3cret")
    fake.generate_day(DAY, "CZK", var_symbols=["2026000101", "2026000102"])
    fake.generate_day(DAY, "EUR", var_symbols=["2026000201"])
    return fake


@pytest.fixture
def base_url(fake: FakeComgate) -> Iterator[str]:
    """The fake served on loopback."""
    with serve(fake.app) as url:
        yield url


def client(base_url: str, secret: str = "s3cret") -> ComgateClient:
    return ComgateClient(base_url, ComgateCredentials("shop-1", secret), backoff_base_seconds=0.05)


def test_transfers_and_rows_are_read_exactly(fake: FakeComgate, base_url: str) -> None:
    with client(base_url) as comgate:
        transfers = comgate.transfer_list(DAY)
        assert [t.transfer_id for t in transfers] == [t.transfer_id for t in fake.transfers_on(DAY)]
        assert {t.account_counterparty for t in transfers} == set(fake.accounts.values())
        czk = fake.transfers_on(DAY, "CZK")[0]
        rows = comgate.single_transfer(czk.transfer_id)
    assert [r.row_type for r in rows[:-1]] == [RowType(r.row_type) for r in czk.rows]
    assert [r.payer_variable_symbol for r in rows[:2]] == ["2026000101", "2026000102"]
    assert [r.confirmed_amount for r in rows[:-1]] == [r.confirmed_amount for r in czk.rows]
    assert rows[-1].row_type is RowType.SUMMARY
    assert rows[-1].fee == sum((r.fee for r in czk.rows), Decimal(0))


def test_the_eur_payout_with_czech_dates_and_its_currency_is_read_exactly(
    fake: FakeComgate, base_url: str
) -> None:
    eur = fake.transfers_on(DAY, "EUR")[0]
    with client(base_url) as comgate:
        listed = {t.transfer_id: t for t in comgate.transfer_list(DAY)}
        rows = comgate.single_transfer(eur.transfer_id)
    assert listed[eur.transfer_id].account_counterparty == fake.accounts["EUR"] == "2900000000/2010"
    assert {r.currency for r in rows} == {"EUR"}
    assert rows[0].payer_variable_symbol == "2026000201"
    expected = [r.paid_at.replace(tzinfo=PRAGUE).astimezone(UTC) if r.paid_at else None for r in eur.rows]
    assert [r.paid_at for r in rows[:-1]] == expected
    assert [r.transferred_amount for r in rows[:-1]] == [r.transferred_amount for r in eur.rows]


def test_a_day_without_payouts_is_empty(base_url: str) -> None:
    with client(base_url) as comgate:
        assert comgate.transfer_list(date(2026, 1, 2)) == []


def test_429_waits_for_retry_after_then_succeeds(fake: FakeComgate, base_url: str) -> None:
    fake.fail_next(429, retry_after=1)
    with client(base_url) as comgate:
        assert len(comgate.transfer_list(DAY)) == 2
    assert [status for _, status in fake.requests] == [429, 200]


def test_5xx_is_retried_with_backoff(fake: FakeComgate, base_url: str) -> None:
    fake.fail_next(503, times=2)
    with client(base_url) as comgate:
        assert len(comgate.transfer_list(DAY)) == 2
    assert [status for _, status in fake.requests] == [503, 503, 200]


def test_5xx_that_persists_fails_clearly(fake: FakeComgate, base_url: str) -> None:
    fake.fail_next(500, times=10)
    with client(base_url) as comgate, pytest.raises(ComgateError, match="HTTP 500"):
        comgate.transfer_list(DAY)
    assert len(fake.requests) == 5


def test_wrong_secret_is_not_retried_and_names_the_settings(fake: FakeComgate, base_url: str) -> None:
    with client(base_url, secret="wrong") as comgate, pytest.raises(ComgateError) as caught:
        comgate.transfer_list(DAY)
    assert "HTTP 401" in caught.value.message
    assert "Unauthorized" in caught.value.message
    assert "BACKOFFICE_COMGATE_MERCHANT" in caught.value.message
    assert len(fake.requests) == 1


def test_unknown_transfer_carries_comgates_message(base_url: str) -> None:
    with client(base_url) as comgate, pytest.raises(ComgateError, match="Transfer 42 not found"):
        comgate.single_transfer(42)


def test_unreachable_comgate_fails_after_retries() -> None:
    from tests.servers import free_port

    comgate = ComgateClient(
        f"http://127.0.0.1:{free_port()}",
        ComgateCredentials("m", "s"),
        max_attempts=2,
        backoff_base_seconds=0.01,
    )
    with comgate, pytest.raises(ComgateError, match="unreachable"):
        comgate.transfer_list(DAY)
