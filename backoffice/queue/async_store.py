"""The queue's hot path on asyncio: lock, complete, batch complete, fail and extend for the
sidecar's routes.

PostgreSQL (`PostgresHotPath`): an async psycopg pool, ONE autocommit statement per call (the
claim with the type's lock sweep and its events, `sql/lock_postgresql.sql`; a completion with its
fencing, task-type check, event, timing and result callback, `sql/complete_postgresql.sql`; fail
and extend likewise, `sql/fail_postgresql.sql`, `sql/extend_postgresql.sql`), no BEGIN/COMMIT and
no pre-ping: a dead connection fails its requests (503) and the pool checks the rest at once.
Lock calls and single completions that arrive while one of their statements is in flight share
the next one (combine.py): one lock statement for the sum of their limits, one completion
statement for all their items; each call still gets its own answer.
The sync store runs the same lock and batch completion statements on PostgreSQL
(claim.PostgresQueue).
SQLite (`SqliteHotPath`): the single-writer sync `TaskStore`, run in a worker thread per call.

Both give the same answers as the sync `TaskStore` (the same records, errors and events); only
the failure paths (why a call was refused) go back to it, off the hot path. A type's definition
(lease, backoff) is read through TaskTypeStore's cache; a miss is read in a worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio.to_thread
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import case, insert, select, text, update

from backoffice.errors import DatabaseUnavailable
from backoffice.queue.claim import CLAIMABLE, claim_params, complete_params, statement
from backoffice.queue.combine import Combiner
from backoffice.queue.models import Task, TaskEvent
from backoffice.queue.records import CompletionOutcome, TaskRecord
from backoffice.queue.store import TaskStore, compact_json, split_batch, utcnow
from backoffice.queue.task_types import TypeDefaults

UNAVAILABLE = "The database cannot be reached right now; retry after a few seconds."
# A task claimed for a client that went away before its answer: back to pending at once.
RELEASED_EVENT = "lock_released"
# An extend without a lease takes the type's: the one read before its statement.
TASK_TYPE_OF = "SELECT task_type FROM tasks WHERE id = %(id)s"


class HotPath(Protocol):
    """The queue calls the sidecar serves on its event loop."""

    async def claim(
        self, task_type: str, actor: str, limit: int, lease_seconds: int | None
    ) -> list[TaskRecord]:
        """Lock up to `limit` claimable tasks now (no waiting), sweeping the type's run-out locks."""
        ...

    async def complete(
        self, task_id: uuid.UUID, token: uuid.UUID, result: Any, actor: str, task_types: frozenset[str] | None
    ) -> TaskRecord:
        """`TaskStore.complete`."""
        ...

    async def complete_many(
        self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], actor: str, task_types: frozenset[str] | None
    ) -> list[CompletionOutcome]:
        """`TaskStore.complete_many`, with `forbidden` for items of types the caller may not touch."""
        ...

    async def fail(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        error: str,
        retry: bool,
        error_kind: str,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """`TaskStore.fail`, refused (403) for a type the caller may not touch."""
        ...

    async def extend(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        lease_seconds: int | None,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """`TaskStore.extend`, refused (403) for a type the caller may not touch."""
        ...

    async def release(self, tasks: Sequence[TaskRecord], actor: str) -> int:
        """Give back tasks just claimed for a client that went away; how many went back."""
        ...

    async def claimable(self, task_type: str) -> bool:
        """True when a lock call for `task_type` would get a task now (the long-poll ticker)."""
        ...

    async def close(self) -> None:
        """Close connections."""
        ...


# A single-task completion the combiner holds: id, token, result as JSON text.
_Completion = tuple[uuid.UUID, uuid.UUID, str]
# At most this many tasks per combined lock statement, items per combined completion.
MAX_COMBINED = 100

# The name bench/ and the plan tests use for the hot path's statements.
_statement = statement


def _claim_order(task: TaskRecord) -> tuple[int, datetime, uuid.UUID]:
    return (task.priority, task.available_at, task.id)


async def _type_defaults(store: TaskStore, task_type: str) -> TypeDefaults | None:
    """The type's definition defaults, from the cache, or read in a worker thread on a miss."""
    fresh, record = store.types.peek(task_type)
    if not fresh:
        record = await anyio.to_thread.run_sync(store.types.find, task_type)
    return store.types.defaults_of(record)


class PostgresHotPath:
    """One autocommit statement per call over an async psycopg pool."""

    def __init__(self, store: TaskStore, conninfo: str, pool_size: int, timeout: float) -> None:
        self.store = store
        self.settings = store.settings
        self.pool = AsyncConnectionPool(
            conninfo,
            connection_class=AsyncConnection[DictRow],
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": int(timeout),
                # psycopg prepares a statement on its 5th run; the server would still plan each
                # run anew while it compares custom plans with the generic one (0.4 ms for the
                # lock statement). The generic plans are checked in test_hot_path_plan.py.
                # Timestamps come back in UTC, as the records hold them (no conversion per row;
                # no statement renders a timestamp as text, so nothing else sees the zone).
                "options": "-c plan_cache_mode=force_generic_plan -c TimeZone=UTC",
            },
            min_size=1,
            max_size=pool_size,
            timeout=timeout,
            open=False,
            name="hot-path",
        )
        # One statement in flight per key: the calls that arrive meanwhile share the next. With
        # two, fewer calls shared each (8 one-task clients, 2 cores: 1.25 commits per task and
        # 1.8 ms of sidecar CPU per task, against 1.6 ms and a steadier rate with one).
        self._claims = Combiner(
            self._claim_combined, MAX_COMBINED, weight=int, orphan=self._give_back, in_flight=1
        )
        # Never one task twice in a statement: UPDATE … FROM would count both items as done.
        self._completions = Combiner(self._complete_combined, MAX_COMBINED, distinct=_task_id, in_flight=1)

    async def open(self) -> None:
        """Open the pool; connections are made in the background (a database that is down now
        makes requests answer 503 until it is back, it does not stop the sidecar)."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(UNAVAILABLE) from exc
        except psycopg.OperationalError as exc:
            # This connection is dropped by the pool; the idle ones are checked now rather than
            # each failing a request of its own (the pre-ping we do not pay on every checkout).
            await self.pool.check()
            raise DatabaseUnavailable(UNAVAILABLE) from exc

    async def _rows(self, statement: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            cursor = await conn.execute(statement, params)
            return await cursor.fetchall()

    async def claim(
        self, task_type: str, actor: str, limit: int, lease_seconds: int | None
    ) -> list[TaskRecord]:
        """Sweep and claim in one statement (sql/lock_postgresql.sql)."""
        if not lease_seconds:
            lease_seconds = self.store.lease_from(await _type_defaults(self.store, task_type))
        return await self._claims((task_type, actor, lease_seconds), limit)

    async def _claim_combined(
        self, key: tuple[str, str, int], limits: Sequence[int]
    ) -> list[list[TaskRecord]]:
        """One lock statement for calls waiting together: each takes its limit's share, in
        claim order and in the order the calls came."""
        task_type, actor, lease_seconds = key
        now = utcnow()
        params = claim_params(task_type, sum(limits), actor, now, now + timedelta(seconds=lease_seconds))
        rows = await self._rows(statement("lock_postgresql"), params)
        claimed = sorted((TaskRecord.from_row(r, now) for r in rows), key=_claim_order)
        shares, start = [], 0
        for limit in limits:
            shares.append(claimed[start : start + limit])
            start += limit
        return shares

    async def _give_back(self, key: tuple[str, str, int], limit: int, tasks: list[TaskRecord]) -> None:
        # claimed for a call cancelled while its statement ran
        if tasks:
            await self.release(tasks, key[1])

    async def complete(
        self, task_id: uuid.UUID, token: uuid.UUID, result: Any, actor: str, task_types: frozenset[str] | None
    ) -> TaskRecord:
        """Complete in one statement, shared with the caller's other completions in flight
        (combine.py); when nothing was completed, say why as the sync store does."""
        text = compact_json(result)
        self.store._check_bytes("result", len(text.encode()), self.settings.max_result_bytes)
        return await self._completions((actor, task_types), (task_id, token, text))

    async def _complete_combined(
        self, key: tuple[str, frozenset[str] | None], items: Sequence[_Completion]
    ) -> list[TaskRecord | Exception]:
        actor, task_types = key
        now = utcnow()
        params = {
            "ids": [i[0] for i in items],
            "tokens": [i[1] for i in items],
            "results": [i[2] for i in items],
            "actor": actor,
            "now": now,
            "task_types": sorted(task_types) if task_types is not None else None,
        }
        rows = await self._rows(statement("complete_postgresql"), params)
        done = {r["id"]: TaskRecord.from_row(r, now) for r in rows}
        answers: list[TaskRecord | Exception] = []
        for task_id, token, _ in items:
            if task_id in done:
                answers.append(done[task_id])
                continue
            try:
                await anyio.to_thread.run_sync(self._refusal, task_id, token, task_types, actor, now)
            except Exception as refused:  # its reason, or what kept us from reading it: its own
                answers.append(refused)
        return answers

    async def fail(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        error: str,
        retry: bool,
        error_kind: str,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """Fail in one statement (sql/fail_postgresql.sql); a refusal is explained as for complete.
        The type's retry_backoff_seconds is read by the statement itself (the task's type is not
        known before it); `backoff_base` is the setting, for an undefined type."""
        now = utcnow()
        params = {
            "id": task_id,
            "token": token,
            "error": error,
            "error_kind": error_kind,
            "retry": retry,
            "backoff_base": float(self.settings.retry_backoff_base_seconds),
            "backoff_max": float(self.settings.retry_backoff_max_seconds),
            "actor": actor,
            "now": now,
            "task_types": sorted(task_types) if task_types is not None else None,
        }
        return await self._one("fail_postgresql", params, task_types)

    async def extend(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        lease_seconds: int | None,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """Extend in one statement (sql/extend_postgresql.sql); a refusal is explained as for complete.
        Without `lease_seconds`, the lease a lock call gets: the task's type is read first."""
        if not lease_seconds:
            rows = await self._rows(TASK_TYPE_OF, {"id": task_id})
            defaults = await _type_defaults(self.store, rows[0]["task_type"]) if rows else None
            lease_seconds = self.store.lease_from(defaults)
        now = utcnow()
        until = now + timedelta(seconds=lease_seconds)
        params = {
            "id": task_id,
            "token": token,
            "locked_until": until,
            "locked_until_text": until.isoformat(),
            "actor": actor,
            "now": now,
            "task_types": sorted(task_types) if task_types is not None else None,
        }
        return await self._one("extend_postgresql", params, task_types)

    async def _one(
        self, name: str, params: Mapping[str, Any], task_types: frozenset[str] | None
    ) -> TaskRecord:
        """The task a one-task statement changed; when it changed none, the sync store's reason."""
        rows = await self._rows(statement(name), params)
        if rows:
            return TaskRecord.from_row(rows[0], params["now"])
        args = (params["id"], params["token"], task_types, params["actor"], params["now"])
        await anyio.to_thread.run_sync(self._refusal, *args)
        raise AssertionError("unreachable: _refusal always raises")

    def _refusal(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        task_types: frozenset[str] | None,
        actor: str,
        now: datetime,
    ) -> None:
        found = self.store.find(task_id)
        if found is not None:
            self.store._require_type(found, task_types, actor)
        raise self.store._why_not_held(task_id, token, now)

    async def complete_many(
        self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], actor: str, task_types: frozenset[str] | None
    ) -> list[CompletionOutcome]:
        """The batch in one statement; refused items are explained afterwards."""
        outcomes, todo = split_batch(items, self.settings.max_result_bytes)
        now = utcnow()
        done: set[uuid.UUID] = set()
        if todo:
            params = complete_params(todo, actor, now, task_types)
            done = {r["id"] for r in await self._rows(statement("complete_batch_postgresql"), params)}
        if len(done) == len(items):
            return [CompletionOutcome(i[0], True) for i in items]
        refused = [i for i in items if i[0] not in done]
        errors = await anyio.to_thread.run_sync(_explain, self.store, refused, task_types, now)
        return [
            CompletionOutcome(task_id, True)
            if task_id in done and n not in outcomes
            else _refused(n, task_id, outcomes, errors)
            for n, (task_id, _, _) in enumerate(items)
        ]

    async def release(self, tasks: Sequence[TaskRecord], actor: str) -> int:
        """Back to pending (sql/release_postgresql.sql), waking the type's waiters everywhere."""
        params = {
            "ids": [t.id for t in tasks],
            "tokens": [t.lock_token for t in tasks],
            "actor": actor,
            "now": utcnow(),
        }
        return len(await self._rows(statement("release_postgresql"), params))

    async def claimable(self, task_type: str) -> bool:
        """One indexed read: a claimable task or a run-out lock of the type."""
        rows = await self._rows(statement("claimable_postgresql"), {"task_type": task_type, "now": utcnow()})
        return bool(rows)


def _task_id(item: _Completion) -> uuid.UUID:
    return item[0]


def _explain(
    store: TaskStore,
    refused: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
    task_types: frozenset[str] | None,
    now: datetime,
) -> dict[uuid.UUID, str]:
    """Why each refused item was not completed: `forbidden` (a type the caller may not touch)
    first, then the single-task endpoint's code (not_found, already_completed, lock_lost)."""
    types = store.task_types_of([i[0] for i in refused]) if task_types is not None else {}
    errors: dict[uuid.UUID, str] = {}
    for task_id, token, _ in refused:
        if task_id in types and task_types is not None and types[task_id] not in task_types:
            errors[task_id] = "forbidden"
        elif task_id not in errors:
            errors[task_id] = store._why_not_held(task_id, token, now).code
    return errors


def _refused(
    n: int, task_id: uuid.UUID, outcomes: dict[int, CompletionOutcome], errors: dict[uuid.UUID, str]
) -> CompletionOutcome:
    # A forbidden task is forbidden in every item that names it (the route refuses it first).
    if errors.get(task_id) == "forbidden":
        return CompletionOutcome(task_id, False, "forbidden")
    if n in outcomes:
        return outcomes[n]
    return CompletionOutcome(task_id, False, errors[task_id])


class SqliteHotPath:
    """SQLite's single writer: the sync TaskStore, one worker thread per call."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close (the engine is the app's)."""

    async def claim(
        self, task_type: str, actor: str, limit: int, lease_seconds: int | None
    ) -> list[TaskRecord]:
        """`TaskStore.lock` without waiting (the waiting is the caller's, on the event loop)."""
        return await anyio.to_thread.run_sync(self.store.lock, task_type, actor, limit, lease_seconds, 0)

    async def complete(
        self, task_id: uuid.UUID, token: uuid.UUID, result: Any, actor: str, task_types: frozenset[str] | None
    ) -> TaskRecord:
        """`TaskStore.complete` in a thread."""
        return await anyio.to_thread.run_sync(self.store.complete, task_id, token, result, actor, task_types)

    async def complete_many(
        self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], actor: str, task_types: frozenset[str] | None
    ) -> list[CompletionOutcome]:
        """Forbidden items refused first, the rest through `TaskStore.complete_many` (one thread hop)."""
        return await anyio.to_thread.run_sync(self._complete_many, items, actor, task_types)

    def _complete_many(
        self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], actor: str, task_types: frozenset[str] | None
    ) -> list[CompletionOutcome]:
        forbidden: set[uuid.UUID] = set()
        if task_types is not None:
            types = self.store.task_types_of([i[0] for i in items])
            forbidden = {i for i, t in types.items() if t not in task_types}
        allowed = [i for i in items if i[0] not in forbidden]
        outcomes = iter(self.store.complete_many(allowed, actor) if allowed else [])
        return [
            CompletionOutcome(i[0], False, "forbidden") if i[0] in forbidden else next(outcomes)
            for i in items
        ]

    async def fail(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        error: str,
        retry: bool,
        error_kind: str,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """`TaskStore.fail` in a thread, after the type check."""

        def fail() -> TaskRecord:
            self._require_type(task_id, task_types, actor)
            return self.store.fail(task_id, token, error, retry, actor, error_kind)

        return await anyio.to_thread.run_sync(fail)

    async def extend(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        lease_seconds: int | None,
        actor: str,
        task_types: frozenset[str] | None,
    ) -> TaskRecord:
        """`TaskStore.extend` in a thread, after the type check."""

        def extend() -> TaskRecord:
            self._require_type(task_id, task_types, actor)
            return self.store.extend(task_id, token, lease_seconds, actor)

        return await anyio.to_thread.run_sync(extend)

    def _require_type(self, task_id: uuid.UUID, task_types: frozenset[str] | None, actor: str) -> None:
        # As PostgresHotPath's refusal: 404 for no such task, 403 for a type not the caller's.
        self.store._require_type(self.store.get(task_id), task_types, actor)

    async def release(self, tasks: Sequence[TaskRecord], actor: str) -> int:
        """Back to pending, in a thread."""
        return await anyio.to_thread.run_sync(self._release, tasks, actor)

    def _release(self, tasks: Sequence[TaskRecord], actor: str) -> int:
        now = utcnow()
        released = 0
        with self.store.engine.begin() as conn:
            for task in tasks:
                hit = conn.execute(
                    update(Task)
                    .where(
                        Task.id == task.id,
                        Task.lock_token == task.lock_token,
                        text("tasks.status = 'locked'"),
                    )
                    .values(
                        status="pending",
                        attempts=Task.attempts - 1,
                        first_locked_at=case((Task.attempts == 1, None), else_=Task.first_locked_at),
                        lock_token=None,
                        lock_date=None,
                        locked_until=None,
                        locked_by=None,
                        version=Task.version + 1,
                        updated_at=now,
                        updated_by=actor,
                    )
                ).rowcount
                if hit:
                    released += 1
                    conn.execute(
                        insert(TaskEvent).values(
                            task_id=task.id,
                            event=RELEASED_EVENT,
                            actor=actor,
                            at=now,
                            details={"reason": "client_gone"},
                        )
                    )
        for task_type in {t.task_type for t in tasks}:
            self.store.signals.wake(task_type)
        return released

    async def claimable(self, task_type: str) -> bool:
        """One read in a thread: a claimable task or a run-out lock of the type."""
        return await anyio.to_thread.run_sync(self._claimable, task_type)

    def _claimable(self, task_type: str) -> bool:
        now = utcnow()
        ready = select(Task.id).where(Task.task_type == task_type, CLAIMABLE, Task.available_at <= now)
        run_out = select(Task.id).where(
            Task.task_type == task_type, text("tasks.status = 'locked'"), Task.locked_until <= now
        )
        with self.store.engine.connect() as conn:
            return conn.execute(ready.union_all(run_out).limit(1)).first() is not None


def hot_path_for(store: TaskStore) -> PostgresHotPath | SqliteHotPath:
    """The hot path for the store's database."""
    if store.dialect.name == "postgresql":
        conninfo = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresHotPath(
            store, conninfo, store.settings.db_pool_size, float(store.settings.db_connect_timeout_seconds)
        )
    return SqliteHotPath(store)
