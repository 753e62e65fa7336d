"""Finish_Transport's functions on both databases, against the fake Shoptet over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, update

from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.integrations.shoptet import ShoptetClient, ShoptetUnavailable
from backoffice.warehouse.box_store import TransportBoxStore
from backoffice.warehouse.models import TransportBoxItem
from backoffice.warehouse.stocking_store import BoxStockingStore
from backoffice.warehouse.transport import finish_received_boxes, stock_box
from tests.servers import serve

STOCK = 1
ITEMS = [("ANL-001", 5), ("ANL-002", 7), ("ANL-003", 2)]


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with its seeded stock."""
    return FakeShoptet(3, orders=0)


@pytest.fixture
def client(fake: FakeShoptet) -> Iterator[ShoptetClient]:
    """A real client of the served fake: fast retries, a short timeout for the unknown-outcome case."""
    with (
        serve(fake.app) as url,
        ShoptetClient(url, DEFAULT_TOKEN, backoff_base=0.01, max_attempts=3, timeout=1.0) as client,
    ):
        yield client


@pytest.fixture
def boxes(engine: Engine) -> TransportBoxStore:
    """The operator's box store."""
    return TransportBoxStore(engine)


@pytest.fixture
def stocking(engine: Engine) -> BoxStockingStore:
    """The job's box store."""
    return BoxStockingStore(engine)


def ledger(fake: FakeShoptet) -> list[tuple[str, Decimal]]:
    return [(m.product_code, m.amount_change) for m in fake.state.stock_ledger]


def movement_states(boxes: TransportBoxStore, code: str) -> dict[str, str]:
    return {i.product_code: i.movement_state for i in boxes.get(code).items}


class InterruptAfter:
    """The real client, cut off after `calls` movements as if Shoptet stopped taking them (429s)."""

    def __init__(self, client: ShoptetClient, calls: int) -> None:
        self.client, self.calls = client, calls

    def stock_movement(self, stock_id: int, product_code: str, amount_change: int) -> None:
        if self.calls == 0:
            raise ShoptetUnavailable("PATCH /api/stocks/1/movements: rate limited after 5 attempts")
        self.calls -= 1
        self.client.stock_movement(stock_id, product_code, amount_change)


def test_received_boxes_are_stocked_once(
    fake: FakeShoptet, client: ShoptetClient, boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    before = dict(fake.state.stock[STOCK])
    boxes.create("B-1", "Received", ITEMS, "ops")
    boxes.create("B-2", "InTransit", [("ANL-004", 1)], "ops")  # not Received: left alone
    summary = finish_received_boxes(stocking, client, STOCK)
    assert summary.ok and summary.codes("stocked") == ["B-1"]
    assert ledger(fake) == [(code, Decimal(n)) for code, n in ITEMS]
    for code, n in ITEMS:
        assert fake.state.stock[STOCK][code] == before[code] + n
    box = boxes.get("B-1")
    assert box.state == "Stocked" and box.updated_by == "finish-transport" and box.version == 2
    assert all(i.movement_state == "stocked" and i.stocked_at is not None for i in box.items)
    assert boxes.get("B-2").state == "InTransit"
    again = finish_received_boxes(stocking, client, STOCK)
    assert again.boxes == [] and len(fake.state.stock_ledger) == 3


def test_interrupted_mid_box_and_rerun_stocks_each_item_exactly_once(
    fake: FakeShoptet, client: ShoptetClient, boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    boxes.create("B-1", "Received", ITEMS, "ops")
    boxes.create("B-2", "Received", [("ANL-009", 4)], "ops")
    first = finish_received_boxes(stocking, InterruptAfter(client, calls=1), STOCK)
    assert first.codes("retry") == ["B-1"] and first.not_attempted == ["B-2"] and not first.ok
    assert movement_states(boxes, "B-1") == {"ANL-001": "stocked", "ANL-002": "pending", "ANL-003": "pending"}
    assert boxes.get("B-1").state == "Received"
    assert ledger(fake) == [("ANL-001", Decimal(5))]

    second = finish_received_boxes(stocking, client, STOCK)
    assert second.codes("stocked") == ["B-1", "B-2"]
    assert [b.stocked_now for b in second.boxes] == [2, 1]
    assert sorted(ledger(fake)) == sorted([(c, Decimal(n)) for c, n in ITEMS] + [("ANL-009", Decimal(4))])


def test_refused_item_puts_box_in_error_and_the_rest_is_stocked(
    fake: FakeShoptet, client: ShoptetClient, boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    boxes.create("B-1", "Received", [("ANL-001", 1), ("NO-SUCH", 2), ("ANL-003", 3)], "ops")
    result = stock_box(stocking, client, STOCK, boxes.get("B-1"))
    assert result.outcome == "error" and result.items_stocked == 2
    box = boxes.get("B-1")
    assert box.state == "Error" and box.error_reason is not None and "NO-SUCH" in box.error_reason
    assert movement_states(boxes, "B-1") == {"ANL-001": "stocked", "NO-SUCH": "pending", "ANL-003": "stocked"}

    # The product gets created in Shoptet, the operator sends the box round again.
    fake.state.stock[STOCK]["NO-SUCH"] = Decimal(0)
    boxes.change_state("B-1", "Received", "ops")
    assert finish_received_boxes(stocking, client, STOCK).codes("stocked") == ["B-1"]
    assert ledger(fake) == [("ANL-001", Decimal(1)), ("ANL-003", Decimal(3)), ("NO-SUCH", Decimal(2))]


def test_timeout_after_sending_is_unknown_and_never_retried_blindly(
    fake: FakeShoptet, client: ShoptetClient, boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    boxes.create("B-1", "Received", ITEMS, "ops")
    fake.delay_next("/api/stocks/", 3.0)  # applied at once, answered after the client gave up
    summary = finish_received_boxes(stocking, client, STOCK)
    assert summary.codes("error") == ["B-1"]
    box = boxes.get("B-1")
    assert box.state == "Error" and box.error_reason is not None
    assert "ANL-001" in box.error_reason and "unknown" in box.error_reason
    assert movement_states(boxes, "B-1") == {"ANL-001": "unknown", "ANL-002": "pending", "ANL-003": "pending"}
    assert finish_received_boxes(stocking, client, STOCK).boxes == []  # Error boxes are not touched

    # A person sees the 5 pieces arrived in Shoptet and says so; the rest is then sent once.
    boxes.change_state("B-1", "Received", "ops", unknown_items="stocked")
    assert finish_received_boxes(stocking, client, STOCK).codes("stocked") == ["B-1"]
    assert ledger(fake) == [(code, Decimal(n)) for code, n in ITEMS]


def test_5xx_on_a_movement_is_unknown_and_not_stocked_resends_it(
    fake: FakeShoptet, client: ShoptetClient, boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    boxes.create("B-1", "Received", [("ANL-005", 3)], "ops")
    fake.fail_next("/api/stocks/", 500)
    assert finish_received_boxes(stocking, client, STOCK).codes("error") == ["B-1"]
    assert fake.state.count("PATCH", "/api/stocks/") == 1  # no retry of a non-idempotent call
    boxes.change_state("B-1", "Received", "ops", unknown_items="not_stocked")
    assert finish_received_boxes(stocking, client, STOCK).codes("stocked") == ["B-1"]
    assert ledger(fake) == [("ANL-005", Decimal(3))]


def test_a_run_that_died_after_marking_sent_leaves_the_box_for_a_person(
    engine: Engine,
    fake: FakeShoptet,
    client: ShoptetClient,
    boxes: TransportBoxStore,
    stocking: BoxStockingStore,
) -> None:
    box = boxes.create("B-1", "Received", ITEMS, "ops")
    first = box.items[0]
    assert stocking.mark_sent(box.id, first.id)  # ... and the process was killed here
    # Moments later (an overlapping run), the item may still be in flight: the box is left alone.
    assert stock_box(stocking, client, STOCK, boxes.get("B-1")).outcome == "busy"
    assert fake.state.stock_ledger == []
    with engine.begin() as conn:
        conn.execute(
            update(TransportBoxItem)
            .where(TransportBoxItem.id == first.id)
            .values(sent_at=datetime.now(UTC) - timedelta(hours=1))
        )
    summary = finish_received_boxes(stocking, client, STOCK)
    assert summary.codes("error") == ["B-1"]
    assert movement_states(boxes, "B-1")["ANL-001"] == "unknown"
    assert fake.state.stock_ledger == []


def test_only_one_of_two_racing_runs_may_send_an_item(
    boxes: TransportBoxStore, stocking: BoxStockingStore
) -> None:
    box = boxes.create("B-1", "Received", ITEMS[:1], "ops")
    item = box.items[0]
    assert stocking.mark_sent(box.id, item.id) is True
    assert stocking.mark_sent(box.id, item.id) is False
    other = boxes.create("B-2", "Opened", ITEMS[:1], "ops")
    assert stocking.mark_sent(other.id, other.items[0].id) is False  # not Received


def test_finish_needs_every_item_stocked(boxes: TransportBoxStore, stocking: BoxStockingStore) -> None:
    box = boxes.create("B-1", "Received", ITEMS[:2], "ops")
    assert stocking.mark_sent(box.id, box.items[0].id)
    stocking.mark_stocked(box.items[0].id)
    assert stocking.finish(box.id) is False
    assert boxes.get("B-1").state == "Received"
