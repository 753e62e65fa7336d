"""The PostgreSQL hot path combines concurrent one-task calls (backoffice/queue/combine.py):
fewer statements than calls, and every call still answered as if it had run alone: its own
tasks, its own record, its own refusal, one event per change. A claim whose caller is cancelled
while its statement runs gives the task back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from backoffice.db import create_db_engine
from backoffice.errors import Conflict, Forbidden, NotFound
from backoffice.queue.async_store import PostgresHotPath, hot_path_for
from backoffice.queue.records import TaskRecord
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings

pytestmark = pytest.mark.postgres

TYPE = "EshopExport"
CALLS = 40
LEASE = 600  # given, so a claim reads no type definition before it queues (no await)
GENEROUS = 120.0  # seconds; a deadline for gates, never a duration the test relies on


@pytest.fixture
def store(postgres_database: str) -> Iterator[TaskStore]:
    """A task store on the worker's PostgreSQL test database, emptied."""
    engine = create_db_engine(Settings(database_url=postgres_database))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE tasks, task_events, callback_deliveries CASCADE"))
    store = TaskStore(engine, Settings(database_url=postgres_database))
    yield store
    store.close()
    engine.dispose()


def hot(store: TaskStore) -> PostgresHotPath:
    """The store's hot path (PostgreSQL)."""
    path = hot_path_for(store)
    assert isinstance(path, PostgresHotPath)
    return path


def fill(store: TaskStore, n: int) -> list[uuid.UUID]:
    """`n` pending tasks of TYPE."""
    return [store.create("ops", TYPE, {"n": i})[0].id for i in range(n)]


def token(task: TaskRecord) -> uuid.UUID:
    """A held task's lock token."""
    assert task.lock_token is not None
    return task.lock_token


def event_counts(store: TaskStore, event: str) -> Counter[uuid.UUID]:
    """How many `event` rows each task has."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT task_id FROM task_events WHERE event = :e"), {"e": event})
        return Counter(r[0] for r in rows)


def test_concurrent_locks_share_statements_and_each_gets_its_own_task(store: TaskStore) -> None:
    ids = fill(store, CALLS + 5)

    async def scenario() -> tuple[list[list[TaskRecord]], int, int]:
        path = hot(store)
        await path.open()
        try:
            got = await asyncio.gather(*(path.claim(TYPE, "worker", 1, LEASE) for _ in range(CALLS)))
            return list(got), path._claims.statements, path._claims.calls
        finally:
            await path.close()

    got, statements, calls = asyncio.run(scenario())
    assert [len(g) for g in got] == [1] * CALLS
    tasks = [g[0] for g in got]
    assert len({t.id for t in tasks}) == CALLS and {t.id for t in tasks} <= set(ids)
    assert calls == CALLS and statements < CALLS  # calls queued together share a statement
    # handed out in claim order, in the order the calls came
    assert tasks == sorted(tasks, key=lambda t: (t.priority, t.available_at, t.id))
    assert event_counts(store, "locked") == Counter(t.id for t in tasks)
    for task in tasks:
        assert task.status == "locked" and task.lock_token is not None and task.attempts == 1
        assert task.locked_by == "worker"


def test_limits_are_shared_out_in_order_and_a_short_supply_goes_to_the_first_calls(store: TaskStore) -> None:
    fill(store, 5)

    async def scenario() -> list[list[TaskRecord]]:
        path = hot(store)
        await path.open()
        try:
            limits = (2, 3, 2)
            return list(await asyncio.gather(*(path.claim(TYPE, "worker", n, LEASE) for n in limits)))
        finally:
            await path.close()

    got = asyncio.run(scenario())
    assert [len(g) for g in got] == [2, 3, 0]  # one statement for 7, 5 there
    assert len({t.id for g in got for t in g}) == 5


def test_concurrent_completions_share_statements_and_each_gets_its_own_answer(store: TaskStore) -> None:
    fill(store, CALLS)
    held = store.lock(TYPE, "worker", CALLS)
    assert len(held) == CALLS and all(t.lock_token for t in held)
    wrong = held[0]  # a stale token
    twice = held[1]  # completed by two calls at once: one wins, the other is told
    gone = uuid.uuid4()  # no such task
    other = store.create("ops", "Payroll", {})[0]
    [other_held] = store.lock("Payroll", "worker")

    async def scenario() -> tuple[list[Any], int]:
        path = hot(store)
        await path.open()
        types = frozenset({TYPE})
        calls = [path.complete(wrong.id, uuid.uuid4(), {"n": -1}, "worker", types)]
        calls += [path.complete(t.id, token(t), {"n": n}, "worker", types) for n, t in enumerate(held[1:])]
        calls += [path.complete(twice.id, token(twice), {"again": True}, "worker", types)]
        calls += [path.complete(gone, uuid.uuid4(), {}, "worker", types)]
        calls += [path.complete(other.id, token(other_held), {}, "worker", types)]
        try:
            return list(await asyncio.gather(*calls, return_exceptions=True)), path._completions.statements
        finally:
            await path.close()

    answers, statements = asyncio.run(scenario())
    stale, first, *done, again, missing, forbidden = answers
    assert statements < len(answers)
    assert isinstance(stale, Conflict) and stale.code == "lock_lost"
    for n, (task, record) in enumerate(zip(held[2:], done, strict=True), start=1):
        assert isinstance(record, TaskRecord), record
        assert record.id == task.id and record.status == "completed" and record.result == {"n": n}
    # Never in one statement (they would both count as done); in two, the database orders them:
    # one completes the task, the other is told it already was.
    winner, loser = (first, again) if isinstance(first, TaskRecord) else (again, first)
    assert isinstance(winner, TaskRecord) and winner.id == twice.id and winner.status == "completed"
    assert isinstance(loser, Conflict) and loser.code == "already_completed"
    assert store.get(twice.id).result == winner.result
    assert isinstance(missing, NotFound)
    assert isinstance(forbidden, Forbidden)
    completed = {t.id for t in held[1:]}
    assert event_counts(store, "completed") == Counter(completed)
    assert store.get(wrong.id).status == "locked" and store.get(other.id).status == "locked"


def test_a_claim_whose_caller_is_cancelled_mid_statement_goes_back(
    store: TaskStore, postgres_database: str
) -> None:
    [task_id] = fill(store, 1)
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def scenario() -> None:
        path = hot(store)
        await path.open()
        # Hold the events table: the lock statement's INSERT waits, so the claim is in flight.
        blocker = await psycopg.AsyncConnection.connect(url)
        watcher = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            await blocker.execute("LOCK TABLE task_events IN EXCLUSIVE MODE")
            call = asyncio.create_task(path.claim(TYPE, "worker", 1, LEASE))
            deadline = time.monotonic() + GENEROUS
            while not await _waiting_on_a_lock(watcher):
                assert time.monotonic() < deadline, "the lock statement never started"
                await asyncio.sleep(0.02)
            call.cancel()
            await blocker.commit()  # the statement finishes: the task is claimed for nobody
            with pytest.raises(asyncio.CancelledError):
                await call
            while path._claims._drains:  # gate: the combiner has given the task back
                await asyncio.gather(*path._claims._drains)
        finally:
            await blocker.close()
            await watcher.close()
            await path.close()

    asyncio.run(scenario())
    back = store.get(task_id)
    assert back.status == "pending" and back.attempts == 0 and back.lock_token is None
    assert [e.event for e in store.events(task_id)] == ["created", "locked", "lock_released"]


async def _waiting_on_a_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    row = await cursor.fetchone()
    return bool(row and row[0])
