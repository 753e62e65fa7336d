"""finish-transport under the Prefect harness, against the fake Shoptet over HTTP, on both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from backoffice.integrations.fakes.shoptet import FakeShoptet
from backoffice.settings import get_settings
from backoffice.warehouse.box_store import TransportBoxStore
from backoffice.warehouse.transport import TransportSummary
from flows.finish_transport import finish_transport

pytestmark = pytest.mark.usefixtures("prefect_server")

BOX_ITEMS = [("ANL-001", 6), ("ANL-002", 2), ("ANL-003", 10)]


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet whose stock the job fills."""
    return FakeShoptet(4, orders=0)


@pytest.fixture
def boxes(engine: Engine) -> TransportBoxStore:
    """The operator's box store."""
    return TransportBoxStore(engine)


def ledger(fake: FakeShoptet) -> list[tuple[str, Decimal]]:
    return sorted((m.product_code, m.amount_change) for m in fake.state.stock_ledger)


@pytest.mark.usefixtures("use_settings")
def test_received_boxes_are_stocked_and_a_rerun_adds_nothing(
    fake: FakeShoptet, boxes: TransportBoxStore
) -> None:
    boxes.create("B-1", "Received", BOX_ITEMS, "ops")
    boxes.create("B-2", "Received", [("ANL-004", 1)], "ops")
    boxes.create("B-3", "Opened", [("ANL-005", 3)], "ops")

    summary = finish_transport()

    assert isinstance(summary, TransportSummary) and summary.ok
    assert summary.codes("stocked") == ["B-1", "B-2"]
    assert ledger(fake) == sorted([(c, Decimal(n)) for c, n in BOX_ITEMS] + [("ANL-004", Decimal(1))])
    assert [boxes.get(c).state for c in ("B-1", "B-2", "B-3")] == ["Stocked", "Stocked", "Opened"]
    again = finish_transport()
    assert isinstance(again, TransportSummary) and again.boxes == []
    assert len(fake.state.stock_ledger) == 4


@pytest.mark.usefixtures("use_settings")
def test_interrupted_mid_box_then_rerun_stocks_each_item_exactly_once(
    fake: FakeShoptet, boxes: TransportBoxStore
) -> None:
    # The second item is refused (Shoptet does not know the product): the run stops short of it.
    items = [("ANL-001", 6), ("ANL-404", 2), ("ANL-003", 10)]
    boxes.create("B-1", "Received", items, "ops")

    state = finish_transport(return_state=True)

    assert state.is_failed() and "B-1" in str(state.message) and "Error" in str(state.message)
    box = boxes.get("B-1")
    assert box.state == "Error" and box.error_reason is not None and "ANL-404" in box.error_reason
    assert ledger(fake) == [("ANL-001", Decimal(6)), ("ANL-003", Decimal(10))]

    fake.state.stock[1]["ANL-404"] = Decimal(0)  # the product now exists in Shoptet
    boxes.change_state("B-1", "Received", "ops")
    summary = finish_transport()

    assert isinstance(summary, TransportSummary) and summary.codes("stocked") == ["B-1"]
    assert summary.boxes[0].stocked_now == 1
    assert ledger(fake) == sorted((c, Decimal(n)) for c, n in items)  # each item exactly once


@pytest.mark.usefixtures("use_settings")
def test_shoptet_refusing_all_movements_leaves_boxes_for_the_next_run(
    fake: FakeShoptet, boxes: TransportBoxStore
) -> None:
    boxes.create("B-1", "Received", BOX_ITEMS, "ops")
    boxes.create("B-2", "Received", [("ANL-004", 1)], "ops")
    fake.fail_next("/api/stocks/", 429, times=5, retry_after=0)  # every attempt of the client

    state = finish_transport(return_state=True)

    assert state.is_failed() and "wait for Shoptet" in str(state.message)
    assert fake.state.stock_ledger == []
    assert [boxes.get(c).state for c in ("B-1", "B-2")] == ["Received", "Received"]
    summary = finish_transport()
    assert isinstance(summary, TransportSummary) and summary.codes("stocked") == ["B-1", "B-2"]
    assert len(fake.state.stock_ledger) == 4


@pytest.mark.usefixtures("use_settings")
def test_unknown_outcome_puts_the_box_in_error_without_a_retry(
    fake: FakeShoptet, boxes: TransportBoxStore
) -> None:
    boxes.create("B-1", "Received", BOX_ITEMS, "ops")
    fake.fail_next("/api/stocks/", 502)  # a gateway error: Shoptet may have applied it

    state = finish_transport(return_state=True)

    assert state.is_failed()
    box = boxes.get("B-1")
    assert box.state == "Error" and box.error_reason is not None and "unknown outcome" in box.error_reason
    assert [i.movement_state for i in box.items] == ["unknown", "pending", "pending"]
    assert fake.state.count("PATCH", "/api/stocks/") == 1
    assert isinstance(finish_transport(), TransportSummary)  # the Error box waits for a person
    assert fake.state.count("PATCH", "/api/stocks/") == 1


@pytest.mark.usefixtures("use_settings")
def test_missing_token_fails_at_once_naming_it(
    fake: FakeShoptet, boxes: TransportBoxStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    boxes.create("B-1", "Received", BOX_ITEMS, "ops")
    monkeypatch.delenv("BACKOFFICE_SHOPTET_API_TOKEN")
    get_settings.cache_clear()

    state = finish_transport(return_state=True)

    assert state.is_failed() and "BACKOFFICE_SHOPTET_API_TOKEN" in str(state.message)
    assert fake.state.requests == []
    assert boxes.get("B-1").state == "Received"
