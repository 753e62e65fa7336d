"""Totals of audit events by kind, read incrementally from `task_events`.

The metrics' lock/completion/failure/expiry counters are these totals: the audit table is the
one record every sidecar process and every database session writes to, so the numbers are the
system's, whichever process is scraped, and they survive restarts (events are never deleted).

Reading all of `task_events` on each scrape would grow with the table, so the totals are kept
per process and only events after a watermark are counted again. The watermark moves only past
events older than `settle_seconds`: on PostgreSQL ids are handed out at insert but become visible
at commit, so a recent lower id may still appear; an event is missed only when its transaction
stays open longer than the settle time (our transactions last milliseconds).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from backoffice.queue.models import TaskEvent

SETTLE_SECONDS = 60.0


class EventCountStore:
    """Monotonic totals of `task_events` by event name."""

    def __init__(self, engine: Engine, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.engine = engine
        self.settle = timedelta(seconds=settle_seconds)
        self._settled: Counter[str] = Counter()
        self._watermark = 0
        self._lock = threading.Lock()

    def totals(self) -> dict[str, int]:
        """Every event name seen so far with its count."""
        with self._lock, self.engine.connect() as conn:
            cutoff = datetime.now(UTC) - self.settle
            # Fold the settled part into the kept totals, then count the rest afresh.
            new_mark = conn.execute(
                select(func.max(TaskEvent.id)).where(TaskEvent.id > self._watermark, TaskEvent.at < cutoff)
            ).scalar_one_or_none()
            if new_mark is not None:
                rows = conn.execute(
                    select(TaskEvent.event, func.count())
                    .where(TaskEvent.id > self._watermark, TaskEvent.id <= new_mark)
                    .group_by(TaskEvent.event)
                ).all()
                self._settled.update({event: n for event, n in rows})
                self._watermark = new_mark
            fresh = conn.execute(
                select(TaskEvent.event, func.count())
                .where(TaskEvent.id > self._watermark)
                .group_by(TaskEvent.event)
            ).all()
        totals = Counter(self._settled)
        totals.update({event: n for event, n in fresh})
        return dict(totals)
