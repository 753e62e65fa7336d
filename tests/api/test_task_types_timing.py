"""Execution timing: the pure held/waited functions, and the /metrics histograms by task type fed
from `completed` / `failed` events (written here directly with chosen timings; the hot path's own
events are checked in test_hot_path_wiring.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from backoffice.queue.store import TaskStore
from backoffice.queue.timing import held_seconds, timing_details, waited_seconds
from backoffice.settings import Settings

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_held_is_lock_to_end() -> None:
    assert held_seconds(T0, T0 + timedelta(seconds=90)) == 90.0
    assert held_seconds(None, T0) is None
    assert held_seconds(T0 + timedelta(seconds=1), T0) == 0.0  # clock skew never goes negative


def test_waited_counts_from_not_before_when_later_than_creation() -> None:
    first_lock = T0 + timedelta(minutes=10)
    assert waited_seconds(T0, None, first_lock) == 600.0
    assert waited_seconds(T0, T0 + timedelta(minutes=8), first_lock) == 120.0
    assert waited_seconds(T0, T0 - timedelta(days=1), first_lock) == 600.0  # a past not_before
    assert waited_seconds(T0, None, None) is None


def test_timing_details_leave_out_what_is_unknown() -> None:
    end = T0 + timedelta(seconds=30)
    assert timing_details("A", T0, None, T0 + timedelta(seconds=5), T0 + timedelta(seconds=20), end) == {
        "task_type": "A",
        "held_seconds": 10.0,
        "waited_seconds": 5.0,
    }
    assert timing_details("A", T0, None, None, None, end) == {"task_type": "A"}


def _log(engine: Engine, settings: Settings, event: str, details: dict[str, Any]) -> None:
    store = TaskStore(engine, settings)
    try:
        with engine.begin() as conn:
            store._log(conn, uuid.uuid4(), event, "worker-1", datetime.now(UTC), details)
    finally:
        store.close()


def _histogram(text: str, name: str, task_type: str) -> dict[str, float]:
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    samples = [s for s in family.samples if s.labels.get("task_type") == task_type]
    return {s.name.removeprefix(name) + s.labels.get("le", ""): s.value for s in samples}


def test_metrics_histograms_by_task_type(client: TestClient, engine: Engine, settings: Settings) -> None:
    created, end = T0, T0 + timedelta(seconds=100)
    # Task 1 of A: one failed attempt (retried), then completed — waited is counted once.
    first = timing_details("A", created, None, T0 + timedelta(seconds=2), T0 + timedelta(seconds=2), end)
    _log(engine, settings, "failed", {**first, "error": "boom", "dead": False})
    second = timing_details("A", created, None, T0 + timedelta(seconds=2), end - timedelta(seconds=3), end)
    _log(engine, settings, "completed", second)
    # Task 2 of B: dead-lettered after 0.3 s held; events without timing are ignored.
    dead = timing_details("B", created, None, end - timedelta(seconds=0.3), end - timedelta(seconds=0.3), end)
    _log(engine, settings, "failed", {**dead, "error": "bad input", "dead": True, "error_kind": "validation"})
    _log(engine, settings, "completed", {})

    text = client.get("/metrics").text
    held_a = _histogram(text, "backoffice_task_held_seconds", "A")
    assert held_a["_count"] == 2 and held_a["_sum"] == 98.0 + 3.0
    assert held_a["_bucket5.0"] == 1 and held_a["_bucket300.0"] == 2 and held_a["_bucket+Inf"] == 2
    waited_a = _histogram(text, "backoffice_task_waited_seconds", "A")
    assert waited_a["_count"] == 1 and waited_a["_sum"] == 2.0
    held_b = _histogram(text, "backoffice_task_held_seconds", "B")
    assert held_b["_count"] == 1 and held_b["_bucket0.5"] == 1 and held_b["_bucket0.1"] == 0
    waited_b = _histogram(text, "backoffice_task_waited_seconds", "B")
    assert waited_b["_count"] == 1 and abs(waited_b["_sum"] - 99.7) < 1e-6
    failures = {
        (s.labels["task_type"], s.labels["error_kind"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "backoffice_task_failures_by_kind"
        for s in f.samples
    }
    assert failures == {("A", "execution"): 1, ("B", "validation"): 1}
