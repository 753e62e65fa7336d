"""The Shoptet client against the fake Shoptet over real HTTP: limits, retries, errors, paging."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from backoffice.calendar import PRAGUE
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.integrations.fakes.shoptet_state import LeakyBucket
from backoffice.integrations.shoptet import (
    ShoptetAuthError,
    ShoptetClient,
    ShoptetError,
    ShoptetNotFound,
    ShoptetOutcomeUnknown,
    ShoptetUnavailable,
)
from tests.servers import serve

DAY = date(2024, 5, 6)
# What a request must carry to reach the fake's endpoints (the token and the required Content-Type).
RAW_HEADERS = {"Shoptet-Private-API-Token": DEFAULT_TOKEN, "Content-Type": "application/vnd.shoptet.v1.0"}
START, END = datetime.combine(DAY, time(0), PRAGUE), datetime.combine(DAY, time(23, 59, 59), PRAGUE)


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with 120 invoices on each of three days."""
    return FakeShoptet(9, days=[date(2024, 5, 5), DAY, date(2024, 5, 7)], invoices_per_day=120)


@pytest.fixture
def base_url(fake: FakeShoptet) -> Iterator[str]:
    """The fake served over HTTP on loopback."""
    with serve(fake.app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[ShoptetClient]:
    """A client with fast backoff, so retry tests stay short."""
    with ShoptetClient(base_url, DEFAULT_TOKEN, backoff_base=0.01, max_attempts=4) as client:
        yield client


def test_listing_pages_through_everything_of_the_day(client: ShoptetClient, fake: FakeShoptet) -> None:
    listed = list(client.list_invoices(START, END))
    assert [i["code"] for i in listed] == [i["code"] for i in fake.invoices_between(START, END)]
    assert len(listed) == 120
    assert fake.state.count("GET", "/api/invoices") == 3  # 50 + 50 + 20


def test_plus_in_times_is_url_encoded(base_url: str) -> None:
    # The fake, like Shoptet, reads an unencoded '+' as a space and refuses the time.
    raw = httpx.get(
        f"{base_url}/api/invoices?creationTimeFrom=2024-05-06T00:00:00+0200",
        headers=RAW_HEADERS,
    )
    assert raw.status_code == 400
    assert raw.json()["errors"][0]["errorCode"] == "invalid-request-data"


def test_5xx_and_429_are_retried(client: ShoptetClient, fake: FakeShoptet) -> None:
    code = next(iter(fake.state.invoices))
    fake.fail_next("/api/invoices/", 503, times=2)
    fake.fail_next("/api/invoices/", 429, times=1, retry_after=0)
    assert client.get_invoice(code)["code"] == code
    assert fake.state.count("GET", "/api/invoices/", 503) == 2
    assert fake.state.count("GET", "/api/invoices/", 429) == 1
    assert client.stats.retries == 3


def test_retries_are_bounded(client: ShoptetClient, fake: FakeShoptet) -> None:
    fake.fail_next("/api/invoices", 502, times=10)
    with pytest.raises(ShoptetUnavailable, match="after 4 attempts"):
        list(client.list_invoices(START, END))
    assert fake.state.count("GET", "/api/invoices", 502) == 4


def test_unreachable_shoptet_is_unavailable() -> None:
    unreachable = ShoptetClient("http://127.0.0.1:9", "t", backoff_base=0.01, max_attempts=2)
    with unreachable as client, pytest.raises(ShoptetUnavailable, match="unreachable after 2 attempts"):
        client.get_invoice("x")


def test_error_bodies_become_clear_errors(client: ShoptetClient) -> None:
    with pytest.raises(ShoptetNotFound, match="invoice-not-found") as caught:
        client.get_invoice("0000000000")
    assert caught.value.http_status == 404
    assert caught.value.errors[0]["errorCode"] == "invoice-not-found"
    with pytest.raises(ShoptetError, match="invalid-request-data: Unknown statusId 999"):
        client.set_order_status(next(iter(client.list_orders(-2)))["code"], 999)


def test_a_wrong_token_names_the_setting(base_url: str) -> None:
    with ShoptetClient(base_url, "wrong") as client, pytest.raises(ShoptetAuthError) as caught:
        client.get_invoice("x")
    assert caught.value.http_status == 403
    assert "BACKOFFICE_SHOPTET_API_TOKEN" in str(caught.value)


def test_never_more_than_three_connections(fake: FakeShoptet, client: ShoptetClient) -> None:
    fake.latency = 0.02  # long enough for concurrent requests to overlap in the fake
    codes = [i["code"] for i in fake.invoices_between(START, END)][:30]
    details = client.get_invoices(codes)
    assert [d["code"] for d in details] == codes
    assert fake.state.max_concurrency_seen == 3
    assert fake.state.count("GET", "/api/invoices/", 429) == 0


def test_the_fake_refuses_a_fourth_concurrent_connection(fake: FakeShoptet, base_url: str) -> None:
    fake.latency = 0.3
    code = next(iter(fake.state.invoices))
    with (
        httpx.Client(base_url=base_url, headers=RAW_HEADERS, limits=httpx.Limits(max_connections=5)) as raw,
        ThreadPoolExecutor(5) as pool,
    ):
        statuses = sorted(pool.map(lambda _: raw.get(f"/api/invoices/{code}").status_code, range(5)))
    assert statuses == [200, 200, 200, 429, 429]


def test_order_status_and_stock_movement(client: ShoptetClient, fake: FakeShoptet) -> None:
    order = client.get_order(next(iter(client.list_orders(-2)))["code"])
    assert "notes" in order and all("stockLocation" in i for i in order["items"])
    client.set_order_status(order["code"], 26)
    assert fake.state.orders[order["code"]]["status"]["id"] == 26
    product = next(i["code"] for i in order["items"] if i["itemType"] == "product")
    before = fake.state.stock[1][product]
    client.stock_movement(1, product, 3)
    assert fake.state.stock[1][product] == before + 3
    assert [(m.product_code, m.amount_change) for m in fake.state.stock_ledger] == [(product, 3)]


def test_a_stock_movement_is_not_repeated_after_a_5xx(client: ShoptetClient, fake: FakeShoptet) -> None:
    fake.fail_next("/api/stocks", 500)
    with pytest.raises(ShoptetOutcomeUnknown):
        client.stock_movement(1, next(iter(fake.state.stock[1])), 1)
    assert fake.state.count("PATCH", "/api/stocks") == 1


def test_a_stock_movement_is_retried_after_429(client: ShoptetClient, fake: FakeShoptet) -> None:
    fake.fail_next("/api/stocks", 429, retry_after=0)
    client.stock_movement(1, next(iter(fake.state.stock[1])), 1)
    assert len(fake.state.stock_ledger) == 1


def test_a_late_stock_answer_is_an_unknown_outcome(base_url: str, fake: FakeShoptet) -> None:
    fake.delay_next("/api/stocks", 1.0)
    with ShoptetClient(base_url, DEFAULT_TOKEN, timeout=0.2) as client, pytest.raises(ShoptetOutcomeUnknown):
        client.stock_movement(1, next(iter(fake.state.stock[1])), 2)
    assert fake.state.count("PATCH", "/api/stocks") <= 1  # sent once, never repeated


def test_every_request_sends_shoptets_content_type(base_url: str, fake: FakeShoptet) -> None:
    # The fake answers 400 to a request without it, GETs included, as the OpenAPI requires it.
    bare = httpx.get(f"{base_url}/api/orders", headers={"Shoptet-Private-API-Token": DEFAULT_TOKEN})
    assert bare.status_code == 400
    assert bare.json()["errors"][0]["errorCode"] == "invalid-content-type"
    with ShoptetClient(base_url, DEFAULT_TOKEN) as client:
        code = next(iter(client.list_orders(-2)))["code"]
        client.get_order(code)
        client.set_order_status(code, 26)
        client.stock_movement(1, next(iter(fake.state.stock[1])), 1)
    assert {r.status for r in fake.state.requests} == {200, 400}
    assert [r.status for r in fake.state.requests].count(400) == 1


def test_retry_after_as_an_http_date_is_waited_for(client: ShoptetClient, fake: FakeShoptet) -> None:
    # Before: a date fell back to a short backoff, 4 attempts ran out before it, ShoptetUnavailable.
    code = next(iter(fake.state.invoices))
    fake.fail_next("/api/invoices/", 429, times=1, retry_after=2, http_date=True)
    assert client.get_invoice(code)["code"] == code
    refused, retried = [r for r in fake.state.requests if r.path == f"/api/invoices/{code}"]
    assert refused.status == 429 and retried.status == 200
    assert refused.retry_after is not None
    assert retried.at >= parsedate_to_datetime(refused.retry_after)  # not before the date it named


def test_the_retry_after_date_is_read_and_capped(base_url: str, fake: FakeShoptet) -> None:
    waits: list[float] = []
    code = next(iter(fake.state.invoices))
    fake.fail_next("/api/invoices/", 429, times=2, retry_after=3600, http_date=True)
    with ShoptetClient(base_url, DEFAULT_TOKEN, backoff_max=5.0, sleep=waits.append) as client:
        assert client.get_invoice(code)["code"] == code
    assert waits == [5.0, 5.0]  # an hour ahead, capped at backoff_max; not a 0.5 s backoff


class ManualClock:
    """A monotonic clock that moves only when told: the fake's bucket drains only in `advance`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_requests_are_paced_by_the_bucket_before_shoptet_says_429(base_url: str, fake: FakeShoptet) -> None:
    # Before: the header was ignored and a nearly full bucket overflowed into 429s.
    clock = ManualClock()
    fake.bucket = LeakyBucket(clock=clock)  # drains only while the client waits, however fast the machine
    fake.bucket.fill(DEFAULT_TOKEN, 190)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    code = next(iter(fake.state.invoices))
    with ShoptetClient(base_url, DEFAULT_TOKEN, sleep=sleep, clock=clock) as client:
        for _ in range(20):
            client.get_invoice(code)
    assert fake.state.count("GET", "/api/invoices/", 429) == 0
    assert fake.state.count("GET", "/api/invoices/", 200) == 20
    # 190 + 20 drops against 200 - 5 of room; the first request goes unpaced (the bucket is
    # unknown until an answer shows it), so 14 drops had to drain, 0.1 s each.
    assert sum(waits) == pytest.approx(1.4)


def test_the_fake_answers_a_full_bucket_with_an_http_date(base_url: str, fake: FakeShoptet) -> None:
    fake.bucket = LeakyBucket(clock=ManualClock())  # stays full until the test empties it
    fake.bucket.fill(DEFAULT_TOKEN, 200)
    answer = httpx.get(f"{base_url}/api/orders", headers=RAW_HEADERS)
    assert answer.status_code == 429
    assert parsedate_to_datetime(answer.headers["Retry-After"]) > datetime.now(UTC)
    fake.bucket.fill(DEFAULT_TOKEN, 0)
    assert (
        httpx.get(f"{base_url}/api/orders", headers=RAW_HEADERS).headers["X-RateLimit-Bucket-Filling"]
        == "1/200"
    )


def test_items_per_page_over_the_maximum_is_capped_silently(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/api/orders?itemsPerPage=500", headers=RAW_HEADERS)
    assert answer.status_code == 200
    assert answer.json()["data"]["paginator"]["itemsPerPage"] == 50


def test_status_change_can_suppress_shoptets_email(client: ShoptetClient, fake: FakeShoptet) -> None:
    first, second = list(fake.state.orders)[:2]
    client.set_order_status(first, 26)
    client.set_order_status(second, 26, suppress_email=True)
    assert [(c.code, c.suppress_email) for c in fake.state.status_requests] == [
        (first, False),
        (second, True),
    ]
