"""Concurrency of the queue: many workers drain it exactly once; racing lockers and completers.

The drain goes through the whole stack: worker processes speak HTTP to a real sidecar
(`backoffice api` under uvicorn), which claims through the storage layer.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine

from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client
from tests.integration.queue_checks import (
    Drainers,
    assert_exactly_once,
    consumer_key,
    seed_tasks,
)
from tests.sidecar import Sidecar

TASKS = 10_000
PROCESSES = 2
THREADS = 16
RACE_ROUNDS = 25
T = TypeVar("T")


@pytest.fixture
def store(engine: Engine, settings: Settings) -> Iterator[TaskStore]:
    """A task store on the test database."""
    store = TaskStore(engine, settings)
    yield store
    store.close()


@pytest.mark.slow
def test_processes_drain_every_task_exactly_once(
    settings: Settings, engine: Engine, dialect: str, tmp_path: Path
) -> None:
    """16 threads x 2 processes drain 10,000 tasks over HTTP, one at a time and in batches."""
    ids = seed_tasks(engine, TASKS, "EshopExport")
    # Two uvicorn workers on PostgreSQL: lockers in different server processes race too.
    workers = 2 if dialect == "postgresql" else 1
    with Sidecar(settings, workers=workers, log_path=tmp_path / "sidecar.log") as sidecar:
        key = consumer_key(sidecar.url, "drainer", "EshopExport")
        with Drainers(sidecar.url, key, "EshopExport", tmp_path, PROCESSES, THREADS) as drainers:
            seen = drainers.collect(timeout=600)

    assert seen["unexpected"] == []
    assert seen["unavailable"] == 0
    assert seen["conflicts"] == []
    # No task was handed out twice, and every token is distinct.
    locked_ids = Counter(task_id for task_id, _ in seen["locked"])
    assert locked_ids.most_common(1)[0][1] == 1
    assert len({token for _, token in seen["locked"]}) == TASKS
    # Every acknowledged completion is a distinct task, and all tasks were acknowledged.
    completed = Counter(seen["completed"])
    assert len(completed) == TASKS and set(completed.values()) == {1}
    assert {uuid.UUID(i) for i in completed} == set(ids)
    # Both completion paths were exercised.
    assert 0 < seen["batch_completed"] < TASKS
    assert_exactly_once(engine, "EshopExport", ids)


def race(*calls: Callable[[], T]) -> list[T]:
    """Run `calls` in threads released together by a barrier; their results (errors re-raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=120)  # a safety net only: a loaded machine starts threads late
            results.append(call())
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == len(calls)
    return results


def test_two_lockers_race_for_one_task(store: TaskStore) -> None:
    """Two lockers released by a barrier at one task: exactly one gets it, every round."""
    for round_ in range(RACE_ROUNDS):
        task, _ = store.create("ops", "Race", {"round": round_})
        got = race(*(partial(store.lock, "Race", f"w{n}", 1) for n in range(2)))
        assert sorted([t.id for t in g] for g in got) == [[], [task.id]]
        stored = store.get(task.id)
        assert stored.status == "locked" and stored.attempts == 1
        assert [e.event for e in store.events(task.id)] == ["created", "locked"]


def test_two_completes_with_one_token(settings: Settings) -> None:
    """Two concurrent completes with the same token: one 200, one 409 already_completed."""
    with app_client(settings) as client:
        for _ in range(RACE_ROUNDS):
            created = client.post("/api/tasks", json={"task_type": "Race", "data": {}}, headers=ADMIN)
            assert created.status_code == 201
            locked = client.post("/api/tasks/lock", json={"task_type": "Race"}, headers=ADMIN).json()
            [task] = locked["items"]
            complete = partial(
                client.post,
                f"/api/tasks/{task['id']}/complete",
                json={"lock_token": task["lock_token"], "result": {"ok": True}},
                headers=ADMIN,
            )
            answers = race(complete, complete)
            assert sorted(r.status_code for r in answers) == [200, 409]
            conflict = next(r.json() for r in answers if r.status_code == 409)
            assert conflict["error"] == "already_completed"
            assert conflict["completed_by"] == "bootstrap-admin"
            events = client.get(f"/api/tasks/{task['id']}/events", headers=ADMIN).json()["items"]
            assert [e["event"] for e in events] == ["created", "locked", "completed"]
