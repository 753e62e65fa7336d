"""EventCountStore: the metrics' queue counters, read incrementally from task_events."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from backoffice.db import create_db_engine
from backoffice.queue.event_counts import EventCountStore
from backoffice.queue.models import TaskEvent
from backoffice.settings import Settings


def add_events(engine: Engine, *names: str, at: datetime | None = None) -> None:
    """Insert audit events (committed)."""
    with engine.begin() as conn:
        conn.execute(insert(TaskEvent), [row(name, at) for name in names])


def row(name: str, at: datetime | None = None) -> dict[str, object]:
    return {
        "task_id": uuid.uuid4(),
        "event": name,
        "actor": "t",
        "at": at or datetime.now(UTC),
        "details": None,
    }


def test_totals_stay_exact_while_the_watermark_moves(engine: Engine) -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    counts = EventCountStore(engine, settle_seconds=60)
    assert counts.totals() == {}
    add_events(engine, "locked", "locked", "completed", at=old)  # settled: folded into the kept totals
    add_events(engine, "locked", "failed")  # recent: counted afresh on every call
    assert counts.totals() == {"locked": 3, "completed": 1, "failed": 1}
    assert counts.totals() == {"locked": 3, "completed": 1, "failed": 1}  # nothing counted twice
    add_events(engine, "lock_expired", at=old)
    add_events(engine, "locked")
    assert counts.totals() == {"locked": 4, "completed": 1, "failed": 1, "lock_expired": 1}
    # A new process starts from the table and agrees.
    assert EventCountStore(engine).totals() == counts.totals()


def test_an_event_committed_late_is_still_counted(postgres_database: str) -> None:
    """PostgreSQL hands out ids at insert but shows rows at commit: a lower id can appear later.

    (SQLite cannot get there: its single writer serialises the transactions, so this is PostgreSQL's.)
    """
    engine = create_db_engine(Settings(database_url=postgres_database))
    try:
        counts = EventCountStore(engine, settle_seconds=60)
        base = Counter(counts.totals())
        with engine.connect() as slow:
            transaction = slow.begin()
            slow.execute(insert(TaskEvent), [row("completed")])  # takes an id, not committed yet
            add_events(engine, "locked")  # a higher id, committed first
            assert Counter(counts.totals()) - base == Counter({"locked": 1})
            transaction.commit()
        assert Counter(counts.totals()) - base == Counter({"locked": 1, "completed": 1})
    finally:
        engine.dispose()
