"""Transport boxes: creation and the operator's state changes (routes), item bookkeeping (the job).

Every state change of a box bumps its `version`. A box row is locked (`FOR UPDATE` on PostgreSQL;
SQLite transactions are already single-writer) by every writer, so the job marking an item as sent
and an operator moving the box elsewhere never interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from backoffice.errors import Conflict, NotFound, ValidationFailed
from backoffice.warehouse.models import BOX_STATES, TransportBox, TransportBoxItem

# States a box may be created in: the ones before stocking.
CREATE_STATES = ("New", "Opened", "InTransit", "Received", "InSwap")
# What an operator may do. Stocked is reached only by the job; Error only by the job.
OPERATOR_TRANSITIONS: dict[str, frozenset[str]] = {
    "New": frozenset({"Opened", "InTransit", "Received", "InSwap", "Closed"}),
    "Opened": frozenset({"New", "InTransit", "Received", "InSwap", "Closed"}),
    "InTransit": frozenset({"Opened", "Received", "InSwap", "Closed"}),
    "InSwap": frozenset({"Opened", "InTransit", "Received", "Closed"}),
    "Received": frozenset({"Opened", "InTransit", "InSwap"}),
    "Stocked": frozenset({"Closed"}),
    "Error": frozenset({"Received", "Closed"}),
    "Closed": frozenset(),
}
UnknownResolution = Literal["stocked", "not_stocked"]


@dataclass(frozen=True)
class BoxItem:
    """A product line of a box and how far its stock movement got."""

    id: int
    product_code: str
    amount: int
    movement_state: str
    sent_at: datetime | None
    stocked_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Box:
    """A transport box with its items."""

    id: int
    code: str
    state: str
    error_reason: str | None
    items: tuple[BoxItem, ...]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int


_ITEM_FIELDS = tuple(f.name for f in fields(BoxItem))
_BOX_FIELDS = tuple(f.name for f in fields(Box) if f.name != "items")


def load_boxes(conn: Connection, condition: object | None, limit: int | None = None) -> list[Box]:
    """Boxes matching `condition` with their items, oldest change first."""
    query = select(TransportBox).order_by(TransportBox.updated_at, TransportBox.id)
    if condition is not None:
        query = query.where(condition)  # type: ignore[arg-type]
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).mappings().all()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    items: dict[int, list[BoxItem]] = {i: [] for i in ids}
    for it in conn.execute(
        select(TransportBoxItem)
        .where(TransportBoxItem.box_id.in_(ids))
        .order_by(TransportBoxItem.box_id, TransportBoxItem.id)
    ).mappings():
        items[it["box_id"]].append(BoxItem(**{f: it[f] for f in _ITEM_FIELDS}))
    return [Box(**{f: r[f] for f in _BOX_FIELDS}, items=tuple(items[r["id"]])) for r in rows]


class TransportBoxStore:
    """Every query on transport boxes and their items."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reading ---------------------------------------------------------------------------

    def get(self, code: str) -> Box:
        """The box `code`; NotFound when there is none."""
        with self.engine.connect() as conn:
            boxes = load_boxes(conn, TransportBox.code == code)
        if not boxes:
            raise NotFound(f"There is no transport box with code '{code}'.")
        return boxes[0]

    def list(self, state: str | None = None, limit: int = 100) -> list[Box]:
        """Boxes, optionally in one state, oldest change first (the order the job works in)."""
        if state is not None and state not in BOX_STATES:
            raise ValidationFailed(f"Unknown box state '{state}'; use one of {', '.join(BOX_STATES)}.")
        condition = TransportBox.state == state if state is not None else None
        with self.engine.connect() as conn:
            return load_boxes(conn, condition, limit)

    # --- the operator -----------------------------------------------------------------------

    def create(self, code: str, state: str, items: Sequence[tuple[str, int]], actor: str) -> Box:
        """A new box with its product lines; Conflict when the code is taken."""
        if state not in CREATE_STATES:
            raise ValidationFailed(
                f"A box cannot be created in state '{state}'; use one of {', '.join(CREATE_STATES)}."
            )
        codes = [product for product, _ in items]
        if len(set(codes)) != len(codes):
            raise ValidationFailed("Each product code may appear once per box; add the amounts up.")
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                box_id = conn.execute(
                    insert(TransportBox)
                    .values(
                        code=code,
                        state=state,
                        created_at=now,
                        created_by=actor,
                        updated_at=now,
                        updated_by=actor,
                        version=1,
                    )
                    .returning(TransportBox.id)
                ).scalar_one()
                if items:
                    conn.execute(
                        insert(TransportBoxItem),
                        [
                            {"box_id": box_id, "product_code": p, "amount": a, "movement_state": "pending"}
                            for p, a in items
                        ],
                    )
        except IntegrityError as exc:
            raise Conflict(
                f"A transport box with code '{code}' already exists.", code="already_exists"
            ) from exc
        return self.get(code)

    def change_state(
        self,
        code: str,
        state: str,
        actor: str,
        *,
        expected_version: int | None = None,
        unknown_items: UnknownResolution | None = None,
    ) -> Box:
        """Move a box as an operator may (see OPERATOR_TRANSITIONS); same state again is a no-op.

        Leaving `Error` for `Received` needs a decision on items whose movement outcome is
        unknown: `stocked` (the person saw the stock in Shoptet) or `not_stocked` (send again).
        """
        if state not in BOX_STATES:
            raise ValidationFailed(f"Unknown box state '{state}'; use one of {', '.join(BOX_STATES)}.")
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            box = self._lock(conn, code)
            if expected_version is not None and box.version != expected_version:
                raise Conflict(
                    f"Box '{code}' changed meanwhile (version {box.version}, you sent "
                    f"{expected_version}); reload it and decide again.",
                    code="version_conflict",
                )
            if box.state == state:
                return self._reload(conn, code)
            if state not in OPERATOR_TRANSITIONS[box.state]:
                allowed = ", ".join(sorted(OPERATOR_TRANSITIONS[box.state])) or "none"
                raise Conflict(
                    f"Box '{code}' cannot go from {box.state} to {state} (allowed: {allowed}).",
                    code="invalid_transition",
                )
            started = [i for i in box.items if i.movement_state != "pending"]
            if box.state == "Received" and started:
                raise Conflict(
                    f"Box '{code}' is being stocked ({len(started)} item(s) already sent); "
                    "it can no longer leave Received by hand.",
                    code="invalid_transition",
                )
            if box.state == "Error" and state == "Received":
                self._resolve_unknown(conn, box, unknown_items, actor, now)
            conn.execute(
                update(TransportBox)
                .where(TransportBox.id == box.id)
                .values(
                    state=state,
                    error_reason=None,
                    updated_at=now,
                    updated_by=actor,
                    version=TransportBox.version + 1,
                )
            )
            return self._reload(conn, code)

    def _resolve_unknown(
        self, conn: Connection, box: Box, resolution: UnknownResolution | None, actor: str, now: datetime
    ) -> None:
        unknown = [i for i in box.items if i.movement_state in ("sent", "unknown")]
        if not unknown:
            return
        if resolution is None:
            products = ", ".join(f"{i.product_code} ({i.amount})" for i in unknown)
            raise Conflict(
                f"Box '{box.code}' has stock movements with an unknown outcome: {products}. Check those "
                "products' stock in Shoptet, then send unknown_items='stocked' if it was added or "
                "'not_stocked' to send it again.",
                code="unknown_movements",
            )
        ids = [i.id for i in unknown]
        if resolution == "stocked":
            values: dict[str, object] = {
                "movement_state": "stocked",
                "stocked_at": now,
                "last_error": f"confirmed stocked by {actor}",
            }
        else:
            values = {"movement_state": "pending", "sent_at": None, "last_error": f"resent by {actor}"}
        conn.execute(update(TransportBoxItem).where(TransportBoxItem.id.in_(ids)).values(**values))

    def _lock(self, conn: Connection, code: str) -> Box:
        box_id = conn.execute(
            select(TransportBox.id).where(TransportBox.code == code).with_for_update()
        ).scalar_one_or_none()
        if box_id is None:
            raise NotFound(f"There is no transport box with code '{code}'.")
        return load_boxes(conn, TransportBox.id == box_id)[0]

    def _reload(self, conn: Connection, code: str) -> Box:
        return load_boxes(conn, TransportBox.code == code)[0]
