"""Claim rows of picked orders: one row per order code, so two overlapping runs never print one order.

A run claims the orders it listed. A code nobody holds is inserted (`ON CONFLICT DO NOTHING`: of two
racing inserts exactly one wins). A held code is taken over by a conditional UPDATE only when its
holder finished (`done`/`check`/`skipped`: the order came back to "to pick", which the run then
re-checks on the order itself), is `unmoved` (printed, only the status move is left), is
`undelivered` (its PDF is written but the printer refused it: the taker sends that file again),
its run went silent for longer than the lease (a run that died), or it is this very run (a
retry of the same flow run: Prefect runs one attempt of a flow run at a time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from backoffice.dialects import dialect_of
from backoffice.warehouse.models import PickedOrder

# Longer than any run takes; a claim older than this belongs to a run that died.
CLAIM_LEASE = timedelta(minutes=30)
FINISHED = ("done", "check", "skipped")
ON_PAPER = ("printed", "unmoved")
# Written to a PDF that never reached the printer; taken over at once, like `unmoved`.
UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class Claim:
    """An order this run now holds; `previous` is the status it had before (None: first claim)."""

    order_code: str
    previous: str | None
    times_printed: int
    shipping: str | None = None
    pdf_path: str | None = None

    @property
    def needs_print(self) -> bool:
        """False when it is on paper already (only the move is left) or its PDF awaits sending."""
        return self.previous not in (*ON_PAPER, UNDELIVERED)

    @property
    def undelivered_file(self) -> str | None:
        """The PDF a run wrote for this order but could not print: send this file again."""
        return self.pdf_path if self.previous == UNDELIVERED else None

    @property
    def release_status(self) -> str:
        """The status to give the row back in when this run lets the order go unprinted."""
        return self.previous if self.previous in FINISHED else "skipped"


class PickingStore:
    """Claims, and the bookkeeping of each claimed order until it is moved on in Shoptet."""

    def __init__(self, engine: Engine, lease: timedelta = CLAIM_LEASE) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self.lease = lease

    def claim(
        self, codes: Iterable[str], batch: str, run_id: str, now: datetime | None = None
    ) -> list[Claim]:
        """Claim every code nobody else holds; returns only what this run got."""
        now = now or datetime.now(UTC)
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return []
        fresh = {"status": "claimed", "batch": batch, "run_id": run_id, "claimed_at": now}
        claims: list[Claim] = []
        with self.engine.begin() as conn:
            inserted = conn.execute(
                self.dialect.insert(PickedOrder)
                # Sorted, so two runs inserting overlapping sets lock rows in one order (no deadlock).
                .values([{"order_code": c, "times_printed": 0, **fresh} for c in sorted(wanted)])
                .on_conflict_do_nothing(index_elements=["order_code"])
                .returning(PickedOrder.order_code)
            ).scalars()
            got = set(inserted)
            claims += [Claim(code, None, 0) for code in wanted if code in got]
            held = sorted(code for code in wanted if code not in got)
            rows = conn.execute(
                select(
                    PickedOrder.order_code,
                    PickedOrder.status,
                    PickedOrder.times_printed,
                    PickedOrder.shipping,
                    PickedOrder.pdf_path,
                )
                .where(PickedOrder.order_code.in_(held))
                .order_by(PickedOrder.order_code)
            ).all()
            for code, status, printed, shipping, pdf_path in rows:
                if self._take_over(conn, code, status, run_id, batch, now):
                    claims.append(Claim(code, status, printed, shipping, pdf_path))
        order = {code: n for n, code in enumerate(wanted)}
        return sorted(claims, key=lambda c: order[c.order_code])

    def _take_over(self, conn: Any, code: str, status: str, run_id: str, batch: str, now: datetime) -> bool:
        # Re-evaluated against the row as it is now (PostgreSQL re-checks the WHERE after waiting
        # for a concurrent writer), so of two runs taking over the same row only one succeeds.
        # `claimed` / `printed` belong to a run at work (printing, moving) unless the lease ran out
        # or that run is this one: a retry of the flow run continues what its attempt began.
        takeable = or_(
            PickedOrder.status.in_((*FINISHED, "unmoved", UNDELIVERED)),
            PickedOrder.run_id == run_id,
            and_(PickedOrder.status.in_(("claimed", "printed")), PickedOrder.claimed_at < now - self.lease),
        )
        # An undelivered order stays so until its file reaches the printer (a crash re-sends it).
        new_status = UNDELIVERED if status == UNDELIVERED else "printed" if status in ON_PAPER else "claimed"
        done = conn.execute(
            update(PickedOrder)
            .where(PickedOrder.order_code == code, PickedOrder.status == status, takeable)
            .values(status=new_status, run_id=run_id, batch=batch, claimed_at=now, last_error=None)
        ).rowcount
        return bool(done)

    def release(self, code: str, run_id: str, status: str, error: str | None = None) -> None:
        """Give an order back without printing it (no longer to pick, or gone from Shoptet)."""
        self._update([code], run_id, status=status, last_error=error)

    def mark_printed(self, codes: Iterable[str], run_id: str, shipping: str, pdf_path: str) -> None:
        """The orders are on a delivered picking list; their status move is next."""
        self._update(
            list(codes),
            run_id,
            status="printed",
            shipping=shipping,
            pdf_path=pdf_path,
            printed_at=datetime.now(UTC),
            times_printed=PickedOrder.times_printed + 1,
        )

    def mark_undelivered(
        self, codes: Iterable[str], run_id: str, shipping: str, pdf_path: str, error: str
    ) -> None:
        """The orders' PDF is written but the printer refused it: keep them until it is sent."""
        self._update(
            list(codes), run_id, status=UNDELIVERED, shipping=shipping, pdf_path=pdf_path, last_error=error
        )

    def finish(self, code: str, run_id: str, status: str) -> None:
        """The order was moved on in Shoptet: `done` (to packing) or `check` (address to check)."""
        self._update([code], run_id, status=status, finished_at=datetime.now(UTC), last_error=None)

    def give_up_move(self, code: str, run_id: str, error: str) -> None:
        """A printed order could not be moved on: the next run takes it over and only moves it."""
        self._update([code], run_id, status="unmoved", last_error=error)

    def _update(self, codes: list[str], run_id: str, **values: Any) -> None:
        if not codes:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(PickedOrder)
                .where(PickedOrder.order_code.in_(codes), PickedOrder.run_id == run_id)
                .values(**values)
            )

    def get(self, code: str) -> dict[str, Any] | None:
        """The claim row of `code` as a dict (for the artifact and tests)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(PickedOrder).where(PickedOrder.order_code == code)).mappings().first()
        return dict(row) if row else None
