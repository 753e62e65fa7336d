"""The task store: every query of the scheduled-task queue.

State machine (stored statuses):

    pending ──lock──▶ locked ──complete──▶ completed
       ▲                │  └──fail(retry, attempts left)──▶ pending (after a backoff)
       │                │  └──fail(no retry / attempts used up)──▶ failed (dead letter)
       │                └──lease runs out, swept──▶ expired ──lock──▶ locked
       │                └──lease runs out on the last attempt, swept──▶ failed (dead letter)
       └──────── retry (operator) ◀── failed / expired

A swept lock keeps its holder's token: the holder may still complete the task until somebody
else gets it (a re-lock; for a dead letter, an operator's retry or delete). Nothing is held by
two: an expired task is re-locked with a new token, and a dead letter is never locked. A lock
that ran out but was not swept yet reads as `expired` all the same (TaskRecord). Sweeps run in
every lock call (that type) and on the sidecar's timer (every type, `sweep`).

Task types, error kinds, timing, callbacks (issue #13), the same on both databases and on the
asyncio hot path (async_store.py, whose PostgreSQL statements are sql/*_postgresql.sql):
- a lock without lease_seconds takes the type's lease_seconds, else the setting; a failed
  attempt's backoff base is the type's retry_backoff_seconds, else the setting;
- fail stores `last_error_kind` (execution by default) and its `failed` event says error_kind;
  a lock that runs out (swept to expired, or to a dead letter) records `timeout`. A later
  completion leaves last_error_kind as it is: it tells what went wrong last, as last_error does;
- the `completed` and `failed` events carry timing.timing_details (the sweep's dead letter: held
  until the lock ran out);
- a completion and a dead letter (fail, or the sweep) record the task's result callback
  (callbacks.record_callback) in the same transaction.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from backoffice.dialects import dialect_of
from backoffice.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ValidationFailed,
)
from backoffice.queue.callbacks import check_callback_url, record_callback
from backoffice.queue.claim import CLAIMABLE, HELD, TIMING_COLUMNS, queue_dialect
from backoffice.queue.models import Task, TaskEvent
from backoffice.queue.queries import TaskFilter, TaskQueryStore
from backoffice.queue.records import CompletionOutcome, TaskEventRecord, TaskRecord
from backoffice.queue.signals import TaskSignals
from backoffice.queue.task_types import TaskTypeStore, TypeDefaults, check_data
from backoffice.queue.timing import timing_details
from backoffice.settings import Settings

UPDATABLE_FIELDS = ("data", "priority", "not_before", "max_attempts")
# Attempts of a task created without max_attempts, of a type whose definition sets none.
DEFAULT_MAX_ATTEMPTS = 5


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def new_task_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562, 5.7): 48 bits of Unix time in milliseconds, the version, 74 random
    bits. Ids in creation order put a new task's primary-key entry on the B-tree's right edge,
    and a queue drained in creation order touches neighbouring index pages; random (v4) ids
    scatter both over the whole index (lock latency on a big table: bench/README.md). The time
    it shows is the task's creation time, which the task shows anyway."""
    millis = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    # unix_ts_ms (48) | ver 7 (4) | rand_a (12) | var 0b10 (2) | rand_b (62)
    return uuid.UUID(int=millis << 80 | 7 << 76 | (rand >> 62) << 64 | 2 << 62 | rand & (1 << 62) - 1)


def compact_json(value: Any) -> str:
    """`value` as compact JSON text: what its size limit measures."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON."""
    return len(compact_json(value).encode())


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: key order is irrelevant and 1 equals 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def split_batch(
    items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], max_result_bytes: int
) -> tuple[dict[int, CompletionOutcome], list[tuple[uuid.UUID, uuid.UUID, Any]]]:
    """A batch completion's items refused before any SQL (duplicates, results over the limit),
    by position, and the rest to do."""
    outcomes: dict[int, CompletionOutcome] = {}
    todo: list[tuple[uuid.UUID, uuid.UUID, Any]] = []
    seen: set[uuid.UUID] = set()
    for n, (task_id, token, result) in enumerate(items):
        if task_id in seen:
            outcomes[n] = CompletionOutcome(task_id, False, "duplicate_item")
        elif json_size(result) > max_result_bytes:
            outcomes[n] = CompletionOutcome(task_id, False, "payload_too_large")
        else:
            todo.append((task_id, token, result))
        seen.add(task_id)
    return outcomes, todo


class TaskStore(TaskQueryStore):
    """Create, lock, complete, fail, extend, retry, update and delete tasks (reads: TaskQueryStore)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(engine)
        self.settings = settings
        self.dialect = dialect_of(engine)
        self.queue = queue_dialect(self.dialect)
        listen_url = None
        if self.dialect.supports_listen_notify:
            listen_url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.signals = TaskSignals(listen_url)
        self.types = TaskTypeStore(engine, settings)

    def close(self) -> None:
        """Stop background helpers."""
        self.signals.close()

    # --- writes by producers and operators --------------------------------------------------

    def create(
        self,
        actor: str,
        task_type: str,
        data: dict[str, Any],
        priority: int = 0,
        not_before: datetime | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Insert a task; with a known idempotency key return the existing one (created=False).

        Without `max_attempts` the type's definition decides (else DEFAULT_MAX_ATTEMPTS); `data`
        must match the type's data_schema. Conflict `idempotency_conflict` when that task's data
        differ (JSON-equal is the same)."""
        self._check_size("data", data, self.settings.max_data_bytes)
        definition = self.types.find(task_type)
        if definition is None and self.settings.require_task_type_definitions:
            raise ValidationFailed(
                f"Task type '{task_type}' is not defined, and this server requires definitions; "
                "an operator defines it with PUT /api/task-types/{task_type}.",
                code="unknown_task_type",
            )
        if definition is not None and definition.data_schema is not None:
            check_data(task_type, definition.data_schema, data)
        if callback_url is not None:
            check_callback_url(callback_url, self.settings)
        if max_attempts is None:
            max_attempts = (definition.max_attempts if definition else None) or DEFAULT_MAX_ATTEMPTS
        now = utcnow()
        task_id = new_task_id()
        values = {
            "id": task_id,
            "task_type": task_type,
            "data": data,
            "status": "pending",
            "priority": priority,
            "not_before": not_before,
            "available_at": not_before or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "idempotency_key": idempotency_key,
            "callback_url": callback_url,
            "version": 1,
            "created_at": now,
            "created_by": actor,
            "updated_at": now,
            "updated_by": actor,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(Task).values(**values))
                self._log(conn, task_id, "created", actor, now, {"task_type": task_type})
                self.queue.notify(conn, task_type)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = self._by_idempotency_key(task_type, idempotency_key)
            if existing is None:
                raise
            # Another request's data under the same key is a client bug, not a replay.
            if not json_equal(existing.data, data):
                raise Conflict(
                    f"The idempotency_key '{idempotency_key}' already belongs to task {existing.id} "
                    "with different data; send the same data to get that task, or use a new key.",
                    code="idempotency_conflict",
                    task_id=str(existing.id),
                ) from None
            return existing, False
        self.signals.wake(task_type)
        return self.get(task_id), True

    def update(
        self, task_id: uuid.UUID, actor: str, changes: dict[str, Any], if_version: int | None = None
    ) -> TaskRecord:
        """Change data, priority, not_before or max_attempts of a task nobody holds."""
        if "data" in changes:
            self._check_size("data", changes["data"], self.settings.max_data_bytes)
        now = utcnow()
        with self.engine.begin() as conn:
            task = self._for_update(conn, task_id, now)
            if if_version is not None and task.version != if_version:
                raise PreconditionFailed(
                    f"The task is at version {task.version}, not {if_version}; read it again and retry."
                )
            self._refuse_if_busy(task)
            if "data" in changes:
                self._check_data_on(conn, task.task_type, changes["data"])
            values: dict[str, Any] = {k: v for k, v in changes.items() if k in UPDATABLE_FIELDS}
            if "not_before" in values and task.status == "pending":
                values["available_at"] = values["not_before"] or task.created_at
            conn.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(**values, version=Task.version + 1, updated_at=now, updated_by=actor)
            )
            self._log(conn, task_id, "updated", actor, now, {"fields": sorted(values)})
            self.queue.notify(conn, task.task_type)
        self.signals.wake(task.task_type)
        return self.get(task_id)

    def delete(self, task_id: uuid.UUID, actor: str) -> None:
        """Delete a task nobody holds; its audit events stay."""
        now = utcnow()
        with self.engine.begin() as conn:
            task = self._for_update(conn, task_id, now)
            if task.status == "locked":
                raise Conflict(
                    "The task is locked by a worker; wait for it to finish or for the lock to run out.",
                    code="task_locked",
                )
            conn.execute(delete(Task).where(Task.id == task_id))
            self._log(
                conn, task_id, "deleted", actor, now, {"task_type": task.task_type, "status": task.status}
            )

    def retry(self, task_id: uuid.UUID, actor: str) -> TaskRecord:
        """Put a failed or expired task back to pending with its attempts reset."""
        now = utcnow()
        with self.engine.begin() as conn:
            task = self._for_update(conn, task_id, now)
            if task.status not in ("failed", "expired"):
                raise Conflict(
                    f"Only failed or expired tasks can be retried; this one is {task.status}.",
                    code="not_retryable",
                )
            conn.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status="pending",
                    attempts=0,
                    available_at=now,
                    lock_token=None,
                    locked_until=None,
                    locked_by=None,
                    lock_date=None,
                    version=Task.version + 1,
                    updated_at=now,
                    updated_by=actor,
                )
            )
            self._log(conn, task_id, "retried", actor, now, {"previous_status": task.status})
            self.queue.notify(conn, task.task_type)
        self.signals.wake(task.task_type)
        return self.get(task_id)

    # --- the consumer protocol ---------------------------------------------------------------

    def lock(
        self,
        task_type: str,
        actor: str,
        limit: int = 1,
        lease_seconds: int | None = None,
        wait_seconds: float = 0,
    ) -> list[TaskRecord]:
        """Lock up to `limit` tasks of a type; long-poll up to `wait_seconds` when none is ready."""
        lease = timedelta(seconds=self.lease_seconds(task_type, lease_seconds))
        deadline = time.monotonic() + wait_seconds
        # Long-pollers re-check at least this often (not_before and run-out leases need no signal).
        poll = self.dialect.poll_seconds
        while True:
            seen = self.signals.generation(task_type)
            claimed = self._lock_once(task_type, actor, limit, lease)
            remaining = deadline - time.monotonic()
            if claimed or remaining <= 0:
                return claimed
            self.signals.wait(task_type, seen, min(remaining, poll))

    def _lock_once(self, task_type: str, actor: str, limit: int, lease: timedelta) -> list[TaskRecord]:
        now = utcnow()
        with self.engine.begin() as conn:
            if not self.queue.claim_sweeps:
                self._sweep(conn, task_type, now)
            rows = self.queue.claim(conn, task_type, limit, actor, now, now + lease)
        return [TaskRecord.from_row(r, now) for r in rows]

    def lease_seconds(self, task_type: str, lease_seconds: int | None) -> int:
        """A lock's lease: the one asked for, else the type's lease_seconds, else the setting."""
        if lease_seconds:
            return lease_seconds
        return self.lease_from(self.types.defaults_for(task_type))

    def lease_from(self, defaults: TypeDefaults | None) -> int:
        """The lease of a lock that asks for none, given the type's defaults (None: undefined)."""
        return (defaults.lease_seconds if defaults else None) or self.settings.lock_timeout_seconds

    def backoff_base_seconds(self, task_type: str) -> float:
        """The base of a failed attempt's backoff: the type's retry_backoff_seconds, else the
        setting (sql/fail_postgresql.sql reads the same in its statement)."""
        defaults = self.types.defaults_for(task_type)
        base = defaults.retry_backoff_seconds if defaults else None
        return base if base is not None else self.settings.retry_backoff_base_seconds

    def sweep(self) -> int:
        """Sweep run-out locks of every type (the sidecar's timer); how many were swept.

        Safe to run from several processes at once: each run-out lock is swept by exactly one.
        Lockers waiting for a type whose tasks became claimable are woken.
        """
        now = utcnow()
        with self.engine.begin() as conn:
            rows = self._sweep(conn, None, now)
            woken = sorted({task_type for task_type, status in rows if status == "expired"})
            for task_type in woken:
                self.queue.notify(conn, task_type)
        for task_type in woken:
            self.signals.wake(task_type)
        return len(rows)

    def _sweep(self, conn: Connection, task_type: str | None, now: datetime) -> list[tuple[str, str]]:
        """Turn run-out locks of a type (None: all types) into `expired`, or `failed` when their
        attempts are used up; the lock token stays, so the holder may still complete.
        (task type, new status) of each swept task."""
        run_out = (
            select(Task.id)
            # Served by the partial index ix_tasks_lock_expiry (locked rows only) also without a
            # type (EXPLAIN, 200k rows of which 200 locked: Index Scan, no finished row read).
            .where(text("tasks.status = 'locked'"), Task.locked_until <= now)
            # Concurrent sweepers split the rows instead of deadlocking on them; a row swept
            # meanwhile is re-checked by PostgreSQL after its lock and dropped (no longer locked).
            .with_for_update(skip_locked=True)
        )
        if task_type is not None:
            run_out = run_out.where(Task.task_type == task_type)
        rows = conn.execute(
            update(Task)
            .where(Task.id.in_(run_out.scalar_subquery()))
            .values(
                status=text("CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'expired' END"),
                last_error_kind="timeout",
                version=Task.version + 1,
                updated_at=now,
            )
            .returning(*TIMING_COLUMNS, Task.status, Task.locked_by, Task.attempts, Task.max_attempts)
        ).all()
        events: list[dict[str, Any]] = []
        for r in rows:
            details = {"locked_by": r.locked_by, "attempt": r.attempts}
            events.append(self._event(r.id, "lock_expired", "system", now, details))
            if r.status == "failed":
                message = f"The lock ran out {r.attempts} times (max_attempts {r.max_attempts})."
                conn.execute(update(Task).where(Task.id == r.id).values(last_error=message))
                # Held until the lock ran out (not until this sweep noticed).
                timing = timing_details(
                    r.task_type, r.created_at, r.not_before, r.first_locked_at, r.lock_date, r.locked_until
                )
                dead = {"error": message, "error_kind": "timeout", "dead": True, "attempt": r.attempts}
                events.append(self._event(r.id, "failed", "system", now, {**dead, **timing}))
                record_callback(conn, r.id, "task.failed", now)
        if events:
            conn.execute(insert(TaskEvent), events)
        return [(r.task_type, r.status) for r in rows]

    def complete(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        result: Any,
        actor: str,
        task_types: frozenset[str] | None = None,
    ) -> TaskRecord:
        """Complete a task held with `token`; with `task_types` (a consumer's), only of those types."""
        self._check_size("result", result, self.settings.max_result_bytes)
        now = utcnow()
        with self.engine.begin() as conn:
            done = self.queue.complete_many(conn, [(task_id, token, result)], actor, now)
            # Read back and check the type in the same transaction: one round of checkout,
            # BEGIN and COMMIT per completion instead of three (the hot path of every worker).
            task = self.find(task_id, conn) if done else None
            if task is not None:
                self._require_type(task, task_types, actor)  # raising rolls the completion back
        if task is None:
            found = self.find(task_id)
            if found is not None:
                self._require_type(found, task_types, actor)
            raise self._why_not_held(task_id, token, now)
        return task

    def complete_many(
        self, items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]], actor: str
    ) -> list[CompletionOutcome]:
        """Complete a batch; each item is judged on its own."""
        now = utcnow()
        outcomes, todo = split_batch(items, self.settings.max_result_bytes)
        with self.engine.begin() as conn:
            done = self.queue.complete_many(conn, todo, actor, now) if todo else set()
        for n, (task_id, token, _) in enumerate(items):
            if n in outcomes:
                continue
            error = None if task_id in done else self._why_not_held(task_id, token, now).code
            outcomes[n] = CompletionOutcome(task_id, error is None, error)
        return [outcomes[n] for n in range(len(items))]

    def fail(
        self,
        task_id: uuid.UUID,
        token: uuid.UUID,
        error: str,
        retry: bool,
        actor: str,
        error_kind: str = "execution",
    ) -> TaskRecord:
        """Give a held task back: pending after a backoff, or failed (dead letter; its result
        callback is recorded). sql/fail_postgresql.sql is the same in one statement."""
        now = utcnow()
        with self.engine.begin() as conn:
            task = self._held(conn, task_id, token, now)
            dead = not retry or task.attempts >= task.max_attempts
            backoff = min(
                self.backoff_base_seconds(task.task_type) * 2 ** max(task.attempts - 1, 0),
                self.settings.retry_backoff_max_seconds,
            )
            available_at = now + timedelta(seconds=backoff)
            conn.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status="failed" if dead else "pending",
                    available_at=task.available_at if dead else available_at,
                    last_error=error,
                    last_error_kind=error_kind,
                    lock_token=None,
                    locked_until=None,
                    version=Task.version + 1,
                    updated_at=now,
                    updated_by=actor,
                )
            )
            details: dict[str, Any] = {
                "error": error,
                "error_kind": error_kind,
                "dead": dead,
                "attempt": task.attempts,
            }
            if not dead:
                details["retry_at"] = available_at.isoformat(timespec="microseconds")
            details.update(
                timing_details(
                    task.task_type,
                    task.created_at,
                    task.not_before,
                    task.first_locked_at,
                    task.lock_date,
                    now,
                )
            )
            self._log(conn, task_id, "failed", actor, now, details)
            if dead:
                record_callback(conn, task_id, "task.failed", now)
        return self.get(task_id)

    def extend(
        self, task_id: uuid.UUID, token: uuid.UUID, lease_seconds: int | None, actor: str
    ) -> TaskRecord:
        """Push a held lock's end out by `lease_seconds` from now (a keep-alive); without it, by
        the lease a lock call gets (the type's lease_seconds, else the setting)."""
        now = utcnow()
        with self.engine.begin() as conn:
            held = self._held(conn, task_id, token, now)
            defaults = (
                None if lease_seconds else self.types.defaults_of(self.types.find(held.task_type, conn))
            )
            until = now + timedelta(seconds=lease_seconds or self.lease_from(defaults))
            conn.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status="locked",
                    locked_until=until,
                    version=Task.version + 1,
                    updated_at=now,
                    updated_by=actor,
                )
            )
            self._log(conn, task_id, "lock_extended", actor, now, {"locked_until": until.isoformat()})
        return self.get(task_id)

    # --- helpers -------------------------------------------------------------------------------

    def _held(self, conn: Connection, task_id: uuid.UUID, token: uuid.UUID, now: datetime) -> TaskRecord:
        row = (
            conn.execute(
                select(Task).where(Task.id == task_id, Task.lock_token == token, HELD).with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None:
            raise self._why_not_held(task_id, token, now, conn)
        return TaskRecord.from_row(row, now)

    def _why_not_held(
        self, task_id: uuid.UUID, token: uuid.UUID, now: datetime, conn: Connection | None = None
    ) -> NotFound | Conflict:
        # Inside a transaction, read on its connection: on SQLite a second one would wait
        # for the write lock this transaction holds.
        task = self.find(task_id, conn)
        if task is None:
            return NotFound(f"There is no task {task_id}.")
        if task.status == "completed":
            return Conflict(
                f"The task was already completed by {task.completed_by} at "
                f"{task.completed_date.isoformat() if task.completed_date else '?'}.",
                code="already_completed",
                completed_by=task.completed_by,
                completed_date=task.completed_date.isoformat() if task.completed_date else None,
            )
        return Conflict(self._lock_lost_message(task, token), code="lock_lost", status=task.status)

    @staticmethod
    def _lock_lost_message(task: TaskRecord, token: uuid.UUID) -> str:
        # Say where the task is now: a client decides from it whether anybody else does the work.
        if task.status == "failed" and task.lock_token == token:
            return (
                "This lock ran out on the task's last attempt, so the task is failed (dead letter); "
                "this token may still complete it, but no longer extend or fail it."
            )
        stale = "This lock token is not the task's current one"
        if task.status == "locked":
            return f"{stale}: '{task.locked_by}' holds the task now. Drop the work."
        if task.status == "expired":
            return (
                f"{stale}: the current one is '{task.locked_by}''s, whose lock ran out too; only that "
                "holder may still complete the task. Drop the work."
            )
        if task.status == "pending":
            return (
                f"{stale} and nobody holds the task: it went back to the queue (an attempt given back, "
                "or an operator's retry) and will be locked and done again. Drop the work."
            )
        return (
            f"{stale} and nobody holds the task: it is failed (dead letter) until an operator "
            "retries it. Drop the work."
        )

    def _for_update(self, conn: Connection, task_id: uuid.UUID, now: datetime) -> TaskRecord:
        row = conn.execute(select(Task).where(Task.id == task_id).with_for_update()).mappings().first()
        if row is None:
            raise NotFound(f"There is no task {task_id}.")
        return TaskRecord.from_row(row, now)

    def _check_data_on(self, conn: Connection, task_type: str, data: dict[str, Any]) -> None:
        # Inside the transaction, read on its connection: on SQLite a second one would wait for
        # the write lock this transaction holds (a cold cache must not block the PATCH).
        definition = self.types.find(task_type, conn)
        if definition is not None and definition.data_schema is not None:
            check_data(task_type, definition.data_schema, data)

    @staticmethod
    def _require_type(task: TaskRecord, task_types: frozenset[str] | None, actor: str) -> None:
        if task_types is not None and task.task_type not in task_types:
            raise Forbidden(f"Key '{actor}' may not touch tasks of type '{task.task_type}'.")

    @staticmethod
    def _refuse_if_busy(task: TaskRecord) -> None:
        if task.status == "locked":
            raise Conflict("The task is locked by a worker; it cannot be changed now.", code="task_locked")
        if task.status == "completed":
            raise Conflict("The task is completed; it cannot be changed.", code="task_completed")

    @staticmethod
    def _check_size(what: str, value: Any, limit: int) -> None:
        TaskStore._check_bytes(what, json_size(value), limit)

    @staticmethod
    def _check_bytes(what: str, size: int, limit: int) -> None:
        if size > limit:
            raise PayloadTooLarge(f"The {what} is {size} bytes; the limit is {limit} bytes.")

    @staticmethod
    def _event(
        task_id: uuid.UUID, event: str, actor: str, at: datetime, details: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {"task_id": task_id, "event": event, "actor": actor, "at": at, "details": details}

    def _log(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        event: str,
        actor: str,
        at: datetime,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(insert(TaskEvent).values(**self._event(task_id, event, actor, at, details)))


__all__ = ["CLAIMABLE", "TaskEventRecord", "TaskFilter", "TaskStore"]
