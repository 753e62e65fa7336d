"""The Finish_Transport job's bookkeeping: one committed transaction per step of an item.

An item goes pending → sent (committed BEFORE the HTTP call) → stocked (after Shoptet said so).
Because `sent` is on disk before anything leaves the process, a crash at any point leaves either
a pending item (never sent: safe to send) or a sent one (maybe applied: a person decides).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, update

from backoffice.warehouse.box_store import Box, load_boxes
from backoffice.warehouse.models import TransportBox, TransportBoxItem

JOB_ACTOR = "finish-transport"


class BoxStockingStore:
    """The job's side of transport boxes: find Received boxes and record each movement."""

    def __init__(self, engine: Engine, actor: str = JOB_ACTOR) -> None:
        self.engine = engine
        self.actor = actor

    def received_boxes(self) -> list[Box]:
        """Every box waiting to be stocked, the longest waiting first."""
        with self.engine.connect() as conn:
            return load_boxes(conn, TransportBox.state == "Received")

    def refresh(self, box_id: int) -> Box | None:
        """The box as stored now."""
        with self.engine.connect() as conn:
            boxes = load_boxes(conn, TransportBox.id == box_id)
        return boxes[0] if boxes else None

    def mark_sent(self, box_id: int, item_id: int) -> bool:
        """Claim one pending item of a still-Received box for sending; False when it is not ours.

        The box row is locked first, so an operator cannot move the box away meanwhile, and the
        conditional update lets exactly one of two racing runs send the item.
        """
        with self.engine.begin() as conn:
            if not self._lock_received(conn, box_id):
                return False
            done = conn.execute(
                update(TransportBoxItem)
                .where(
                    TransportBoxItem.id == item_id,
                    TransportBoxItem.box_id == box_id,
                    TransportBoxItem.movement_state == "pending",
                )
                .values(movement_state="sent", sent_at=datetime.now(UTC), last_error=None)
            ).rowcount
        return bool(done)

    def mark_stocked(self, item_id: int) -> None:
        """Shoptet confirmed the movement of a sent item."""
        self._set_item(item_id, "sent", movement_state="stocked", stocked_at=datetime.now(UTC))

    def mark_unknown(self, item_id: int, error: str) -> None:
        """A sent item got no clear answer: it may or may not be in stock now."""
        self._set_item(item_id, "sent", movement_state="unknown", last_error=error)

    def mark_not_sent(self, item_id: int, error: str) -> None:
        """Shoptet surely did not apply the movement (refused it, or never got it): pending again."""
        self._set_item(item_id, "sent", movement_state="pending", sent_at=None, last_error=error)

    def _set_item(self, item_id: int, expected: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(TransportBoxItem)
                .where(TransportBoxItem.id == item_id, TransportBoxItem.movement_state == expected)
                .values(**values)
            )

    def finish(self, box_id: int) -> bool:
        """Move a Received box whose items are all stocked to Stocked; False when not so."""
        with self.engine.begin() as conn:
            if not self._lock_received(conn, box_id):
                return False
            states = conn.execute(
                select(TransportBoxItem.movement_state).where(TransportBoxItem.box_id == box_id)
            ).scalars()
            if any(state != "stocked" for state in states):
                return False
            self._set_box(conn, box_id, "Stocked", None)
        return True

    def fail(self, box_id: int, reason: str) -> bool:
        """Move a Received box to Error with the reason a person reads; False when not Received."""
        with self.engine.begin() as conn:
            if not self._lock_received(conn, box_id):
                return False
            self._set_box(conn, box_id, "Error", reason)
        return True

    def _lock_received(self, conn: Connection, box_id: int) -> bool:
        state = conn.execute(
            select(TransportBox.state).where(TransportBox.id == box_id).with_for_update()
        ).scalar_one_or_none()
        return state == "Received"

    def _set_box(self, conn: Connection, box_id: int, state: str, reason: str | None) -> None:
        conn.execute(
            update(TransportBox)
            .where(TransportBox.id == box_id)
            .values(
                state=state,
                error_reason=reason,
                updated_at=datetime.now(UTC),
                updated_by=self.actor,
                version=TransportBox.version + 1,
            )
        )
