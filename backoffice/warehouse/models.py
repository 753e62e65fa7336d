"""Transport boxes (stocked up by Finish_Transport) and picking-list bookkeeping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.schema import Base, UTCDateTime

BOX_STATES = ("New", "Opened", "InTransit", "Received", "InSwap", "Stocked", "Closed", "Error")
# pending: not sent yet; sent: marked just before the HTTP call (committed), so a crash
# between mark and answer is visible; stocked: Shoptet confirmed; unknown: sent, no answer.
MOVEMENT_STATES = ("pending", "sent", "stocked", "unknown")
# claimed: a run owns the order and is printing it; printed: on paper, status move pending;
# undelivered: its PDF is written (pdf_path) but the printer refused it: the next run sends
# that file again before it moves the order; unmoved: printed, but the run could not move it
# (the next run only moves it); done: moved to packing; check: moved to the check status;
# skipped: no longer to pick.
PICK_STATUSES = ("claimed", "printed", "undelivered", "unmoved", "done", "check", "skipped")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class TransportBox(Base):
    """An internal transfer box arriving at the shop's warehouse."""

    __tablename__ = "transport_boxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    error_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        CheckConstraint(f"state IN ({_in(BOX_STATES)})", name="state"),
        Index("ix_transport_boxes_state", "state", "updated_at"),
    )


class TransportBoxItem(Base):
    """One product line of a box, with the fate of its stock movement."""

    __tablename__ = "transport_box_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("transport_boxes.id", ondelete="CASCADE"))
    product_code: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(Integer)
    movement_state: Mapped[str] = mapped_column(String(16), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"movement_state IN ({_in(MOVEMENT_STATES)})", name="movement_state"),
        # One line per product: the movement of a product is one call, recorded once.
        UniqueConstraint("box_id", "product_code", name="uq_transport_box_items_box_product"),
    )


class PickedOrder(Base):
    """The claim row of an order on a picking list: one per order, so no two runs print it."""

    __tablename__ = "picked_orders"

    order_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    batch: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shipping: Mapped[str | None] = mapped_column(String(255))
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pdf_path: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    times_printed: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"status IN ({_in(PICK_STATUSES)})", name="status"),
        Index("ix_picked_orders_run", "run_id"),
    )
