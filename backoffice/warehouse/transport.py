"""Finish_Transport: add the items of every `Received` box to the e-shop stock, exactly once.

Per item: mark it `sent` (own committed transaction), call Shoptet's stock-movement API, mark it
`stocked`. How a failed call ends depends on what Shoptet can have done with it:

- surely not applied (429/423 after every retry, connection refused): the item is pending again,
  the box stays `Received`, the run stops and the next run sends only what is left;
- refused for good (unknown product, validation error): the item is pending again, the other
  items are still stocked, then the box goes to `Error` with the reason;
- outcome unknown (timeout, connection lost, 5xx after sending): the item is `unknown` and the box
  goes to `Error` at once — a person checks the stock instead of a blind retry doubling it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from backoffice.integrations.shoptet import (
    ShoptetAuthError,
    ShoptetError,
    ShoptetOutcomeUnknown,
    ShoptetUnavailable,
)
from backoffice.warehouse.box_store import Box, BoxItem
from backoffice.warehouse.stocking_store import BoxStockingStore

# A `sent` item older than this belongs to a run that died mid-call (longer than any HTTP timeout
# with retries); a younger one may still be in flight in an overlapping run, so it is left alone.
IN_FLIGHT_GRACE = timedelta(minutes=10)

Outcome = Literal["stocked", "error", "retry", "busy"]


class StockMovements(Protocol):
    """What the job needs of the Shoptet client."""

    def stock_movement(self, stock_id: int, product_code: str, amount_change: int) -> None: ...


@dataclass(frozen=True)
class BoxResult:
    """How one box went in this run."""

    code: str
    outcome: Outcome
    items_total: int
    items_stocked: int
    stocked_now: int
    message: str


@dataclass
class TransportSummary:
    """What a run did, box by box; `not_attempted` are boxes left for the next run."""

    boxes: list[BoxResult] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)

    def codes(self, outcome: Outcome) -> list[str]:
        """Codes of the boxes that ended with `outcome`."""
        return [b.code for b in self.boxes if b.outcome == outcome]

    @property
    def ok(self) -> bool:
        """True when no box needs a person and nothing was left for lack of Shoptet."""
        return not self.codes("error") and not self.codes("retry") and not self.not_attempted


def _describe(item: BoxItem) -> str:
    return f"{item.product_code} ({item.amount} pcs)"


def stock_box(
    store: BoxStockingStore, client: StockMovements, stock_id: int, box: Box, now: datetime | None = None
) -> BoxResult:
    """Stock the not yet stocked items of one Received box, then move it to Stocked or Error."""
    now = now or datetime.now(UTC)
    total = len(box.items)

    def result(outcome: Outcome, message: str, stocked_now: int = 0) -> BoxResult:
        fresh = store.refresh(box.id)
        stocked = sum(i.movement_state == "stocked" for i in (fresh.items if fresh else ()))
        return BoxResult(box.code, outcome, total, stocked, stocked_now, message)

    in_flight = [i for i in box.items if i.movement_state == "sent"]
    if any(i.sent_at is not None and now - i.sent_at < IN_FLIGHT_GRACE for i in in_flight):
        return result("busy", "Another run is sending this box's items; left alone.")
    for item in in_flight:
        store.mark_unknown(item.id, "The run sending this movement stopped before Shoptet answered.")
    unknown = [i for i in box.items if i.movement_state in ("sent", "unknown")]
    if unknown:
        reason = _unknown_reason(unknown)
        store.fail(box.id, reason)
        return result("error", reason)

    stocked_now = 0
    refused: list[str] = []
    for item in box.items:
        if item.movement_state != "pending" or not store.mark_sent(box.id, item.id):
            continue
        try:
            client.stock_movement(stock_id, item.product_code, item.amount)
        except ShoptetOutcomeUnknown as exc:
            store.mark_unknown(item.id, exc.message)
            reason = _unknown_reason([item], detail=exc.message)
            store.fail(box.id, reason)
            return result("error", reason, stocked_now)
        except ShoptetUnavailable as exc:
            store.mark_not_sent(item.id, exc.message)
            return result("retry", f"Shoptet did not take {_describe(item)}: {exc.message}", stocked_now)
        except ShoptetAuthError as exc:
            # Nothing was applied, and no other box would fare better: fail the run loudly.
            store.mark_not_sent(item.id, exc.message)
            raise
        except ShoptetError as exc:
            store.mark_not_sent(item.id, exc.message)
            refused.append(f"{_describe(item)}: {exc.message}")
            continue
        except BaseException as exc:
            # Anything else (a bug, an interrupt) after `sent`: we cannot know what Shoptet did.
            store.mark_unknown(item.id, f"interrupted: {exc!r}")
            store.fail(box.id, _unknown_reason([item], detail=repr(exc)))
            raise
        store.mark_stocked(item.id)
        stocked_now += 1
    if refused:
        reason = (
            "Shoptet refused these items: "
            + "; ".join(refused)
            + (
                ". Fix them (product code in Shoptet), then move the box back to Received; "
                "the items already stocked are not sent again."
            )
        )
        store.fail(box.id, reason)
        return result("error", reason, stocked_now)
    if store.finish(box.id):
        return result("stocked", "All items are in stock.", stocked_now)
    return result("busy", "The box changed while it was being stocked; it is looked at again next run.")


def _unknown_reason(items: Iterable[BoxItem], detail: str | None = None) -> str:
    products = ", ".join(_describe(i) for i in items)
    text = (
        f"Stock movement with unknown outcome for {products}: Shoptet may or may not have added it. "
        "Check the stock in Shoptet, then move the box back to Received with unknown_items "
        "'stocked' (it was added) or 'not_stocked' (send it again)."
    )
    return f"{text} ({detail})" if detail else text


def finish_received_boxes(store: BoxStockingStore, client: StockMovements, stock_id: int) -> TransportSummary:
    """Stock every Received box; stop at the first one Shoptet would not take (the rest wait)."""
    summary = TransportSummary()
    boxes = store.received_boxes()
    for index, box in enumerate(boxes):
        outcome = stock_box(store, client, stock_id, box)
        summary.boxes.append(outcome)
        if outcome.outcome == "retry":
            summary.not_attempted = [b.code for b in boxes[index + 1 :]]
            break
    return summary
