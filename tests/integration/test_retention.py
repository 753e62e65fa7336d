"""Retention on SQLite and PostgreSQL: finished tasks past their type's retention go in batches,
pending and locked ones stay, events of deleted tasks stay for the event retention, and the
Queue_Retention flow runs it under the Prefect harness."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from backoffice.queue.callbacks import record_callback
from backoffice.queue.models import CallbackDelivery, Task, TaskEvent
from backoffice.queue.retention import run_retention
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings

NOW = datetime.now(UTC)


@pytest.fixture
def store(engine: Engine, make_settings: Callable[..., Settings]) -> Iterator[TaskStore]:
    """A task store with callbacks allowed to 127.0.0.1."""
    tasks = TaskStore(engine, make_settings(callback_allowed_hosts="127.0.0.1", callback_secret="s"))
    yield tasks
    tasks.close()


def make_task(store: TaskStore, task_type: str, status: str, **extra: object) -> uuid.UUID:
    """A task of `task_type`, put into `status` as it is stored when it got there (finished NOW)."""
    task, _ = store.create("ops", task_type, {}, **extra)  # type: ignore[arg-type]
    values: dict[str, object] = {"status": status, "updated_at": NOW}
    if status == "completed":
        values["completed_date"] = NOW
    if status == "locked":
        values.update(locked_until=NOW + timedelta(days=3650), lock_token=uuid.uuid4(), locked_by="w")
    with store.engine.begin() as conn:
        conn.execute(update(Task).where(Task.id == task.id).values(**values))
    return task.id


def remaining(engine: Engine) -> set[uuid.UUID]:
    with engine.connect() as conn:
        return set(conn.execute(select(Task.id)).scalars())


def event_task_ids(engine: Engine) -> set[uuid.UUID]:
    with engine.connect() as conn:
        return set(conn.execute(select(TaskEvent.task_id).distinct()).scalars())


def test_retention_deletes_finished_tasks_by_their_types_days(
    store: TaskStore, engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    store.types.put("Short", "ops", {"retention_days": 1})
    store.types.put("Long", "ops", {"retention_days": 100})
    ids = [
        (t, s, make_task(store, t, s))
        for t in ("Short", "Long", "Plain")
        for s in ("completed", "failed", "pending", "locked")
    ]
    unfinished = {i for _, s, i in ids if s in ("pending", "locked")}
    short_finished = {i for t, s, i in ids if t == "Short" and s in ("completed", "failed")}
    settings = make_settings(retention_batch_size=1)  # one row per batch: the loop is exercised

    report = run_retention(engine, settings, NOW + timedelta(hours=1))
    assert report.tasks == 0 and len(remaining(engine)) == len(ids)

    report = run_retention(engine, settings, NOW + timedelta(days=2))
    assert report.tasks_by_rule == {"Short": 2, "Long": 0, "*": 0}
    assert short_finished.isdisjoint(remaining(engine))

    report = run_retention(engine, settings, NOW + timedelta(days=31))  # the default, 30 days
    assert report.tasks_by_rule == {"Short": 0, "Long": 0, "*": 2}

    report = run_retention(engine, settings, NOW + timedelta(days=101))
    assert report.tasks_by_rule["Long"] == 2
    assert remaining(engine) == unfinished  # pending and locked tasks are never touched


def test_events_of_deleted_tasks_stay_for_the_event_retention(
    store: TaskStore, engine: Engine, settings: Settings
) -> None:
    done = make_task(store, "Plain", "completed")
    waiting = make_task(store, "Plain", "pending")
    report = run_retention(engine, settings, NOW + timedelta(days=31))
    assert report.tasks == 1 and report.events == 0
    assert {done, waiting} <= event_task_ids(engine)  # the deleted task's trail is kept

    report = run_retention(engine, settings, NOW + timedelta(days=366))
    assert report.events == 1  # its one `created` event
    assert done not in event_task_ids(engine)
    assert waiting in event_task_ids(engine)  # events of a task that still exists stay


def test_old_finished_callback_deliveries_go(store: TaskStore, engine: Engine, settings: Settings) -> None:
    task_id = make_task(store, "Plain", "completed", callback_url="http://127.0.0.1/hook")
    with engine.begin() as conn:
        record_callback(conn, task_id, "task.completed", NOW)
        record_callback(conn, task_id, "task.completed", NOW)
        first = conn.execute(select(func.min(CallbackDelivery.id))).scalar_one()
        conn.execute(update(CallbackDelivery).where(CallbackDelivery.id == first).values(status="delivered"))
    report = run_retention(engine, settings, NOW + timedelta(days=366))
    assert report.deliveries == 1
    with engine.connect() as conn:
        assert conn.execute(select(CallbackDelivery.status)).scalars().all() == ["pending"]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server", "use_settings")
def test_queue_retention_flow_runs_the_purge(store: TaskStore, engine: Engine) -> None:
    from flows.queue_retention import queue_retention

    make_task(store, "Plain", "pending")
    report = queue_retention(force=True)
    assert not isinstance(report, dict)
    assert getattr(report, "tasks", None) == 0
    assert len(remaining(engine)) == 1
