"""Execution timing: how long a task was held and how long it waited, for its events and /metrics.

    held_seconds    lock to end: from the lock of the attempt that ends (lock_date) to the
                    completion or failure
    waited_seconds  queueing: from when the task could first run (not_before, else creation)
                    to its first lock (first_locked_at)

The hot path writes `timing_details(...)` into the details of its `completed` and `failed` events;
TimingHistograms reads them back (incrementally, like event_counts.py) for the /metrics
histograms by task type: held from every such event (each attempt), waited once per task, from
the event that ends it (`completed`, or `failed` with `dead`), so a retried task is counted once.
The same pass counts `failed` events by task type and `error_kind` (details the hot path adds;
`execution` when absent) for the failures-by-kind counter.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from backoffice.queue.event_counts import SETTLE_SECONDS
from backoffice.queue.models import TaskEvent

# Upper bounds in seconds: a sub-second hand-off up to a day-long queue.
BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
ENDING_EVENTS = ("completed", "failed")


def held_seconds(lock_date: datetime | None, ended_at: datetime) -> float | None:
    """Seconds from the lock to the end of the attempt; None when the task was never locked."""
    if lock_date is None:
        return None
    return max((ended_at - lock_date).total_seconds(), 0.0)


def waited_seconds(
    created_at: datetime, not_before: datetime | None, first_locked_at: datetime | None
) -> float | None:
    """Seconds from when the task could first run (not_before or creation) to its first lock."""
    if first_locked_at is None:
        return None
    ready = max(created_at, not_before) if not_before is not None else created_at
    return max((first_locked_at - ready).total_seconds(), 0.0)


def timing_details(
    task_type: str,
    created_at: datetime,
    not_before: datetime | None,
    first_locked_at: datetime | None,
    lock_date: datetime | None,
    ended_at: datetime,
) -> dict[str, Any]:
    """What a `completed` / `failed` event carries about timing (absent values are left out)."""
    details: dict[str, Any] = {"task_type": task_type}
    held = held_seconds(lock_date, ended_at)
    waited = waited_seconds(created_at, not_before, first_locked_at)
    if held is not None:
        details["held_seconds"] = round(held, 6)
    if waited is not None:
        details["waited_seconds"] = round(waited, 6)
    return details


def timing_sql_postgresql(row: str, ended: str) -> str:
    """`timing_details` as a PostgreSQL jsonb expression over the columns of `row` (a table or
    CTE name; task_type, created_at, not_before, first_locked_at, lock_date), ended at the SQL
    expression `ended`: the same keys and values, absent ones left out (jsonb_strip_nulls)."""

    def seconds(start: str, end: str) -> str:
        # Timestamps have microseconds: 6 decimals are exact, as round(…, 6) in Python.
        return f"round(GREATEST(EXTRACT(EPOCH FROM ({end} - {start})), 0), 6)"

    ready = f"GREATEST({row}.created_at, COALESCE({row}.not_before, {row}.created_at))"
    return (
        f"jsonb_strip_nulls(jsonb_build_object('task_type', {row}.task_type, "
        f"'held_seconds', {seconds(f'{row}.lock_date', ended)}, "
        f"'waited_seconds', {seconds(ready, f'{row}.first_locked_at')}))"
    )


@dataclass
class Distribution:
    """Cumulative bucket counts, sum and count of observations (Prometheus histogram shape)."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        """Add one observation."""
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
        self.total += value
        self.count += 1

    def merged(self, other: Distribution) -> Distribution:
        """The sum of two distributions."""
        return Distribution(
            [a + b for a, b in zip(self.buckets, other.buckets, strict=True)],
            self.total + other.total,
            self.count + other.count,
        )


Histograms = dict[tuple[str, str], Distribution]  # (measure, task type) → distribution
FAILURES = "failures"  # Histograms key (FAILURES, "type|kind"): only .count is used


def _observe(into: Histograms, event: str, details: Mapping[str, Any] | None) -> None:
    if not details or not isinstance(details.get("task_type"), str):
        return
    task_type = details["task_type"]
    if event == "failed":
        kind = details.get("error_kind") if isinstance(details.get("error_kind"), str) else "execution"
        into.setdefault((FAILURES, f"{task_type}|{kind}"), Distribution()).count += 1
    held = details.get("held_seconds")
    if isinstance(held, int | float):
        into.setdefault(("held", task_type), Distribution()).observe(float(held))
    waited = details.get("waited_seconds")
    final = event == "completed" or details.get("dead") is True
    if final and isinstance(waited, int | float):
        into.setdefault(("waited", task_type), Distribution()).observe(float(waited))


class TimingHistograms:
    """Held and waited distributions by task type, read incrementally from the ending events."""

    def __init__(self, engine: Engine, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.engine = engine
        self.settle = timedelta(seconds=settle_seconds)
        self._settled: Histograms = {}
        self._watermark = 0
        self._lock = threading.Lock()

    def read(self) -> Histograms:
        """Every distribution so far (settled events folded in once, recent ones read afresh)."""
        with self._lock, self.engine.connect() as conn:
            cutoff = datetime.now(UTC) - self.settle
            ending = TaskEvent.event.in_(ENDING_EVENTS)
            new_mark = conn.execute(
                select(func.max(TaskEvent.id)).where(TaskEvent.id > self._watermark, TaskEvent.at < cutoff)
            ).scalar_one_or_none()
            if new_mark is not None:
                rows = conn.execute(
                    select(TaskEvent.event, TaskEvent.details).where(
                        ending, TaskEvent.id > self._watermark, TaskEvent.id <= new_mark
                    )
                ).all()
                for event, details in rows:
                    _observe(self._settled, event, details)
                self._watermark = new_mark
            fresh = conn.execute(
                select(TaskEvent.event, TaskEvent.details).where(ending, TaskEvent.id > self._watermark)
            ).all()
            recent: Histograms = {}
            for event, details in fresh:
                _observe(recent, event, details)
            keys = self._settled.keys() | recent.keys()
            empty = Distribution()
            return {k: self._settled.get(k, empty).merged(recent.get(k, empty)) for k in keys}
