"""Task-type definitions: optional per-type settings (lease, attempts, backoff, data schema, retention).

A type without a definition behaves as before: the global defaults, any `data`. A definition is
read through a short per-process cache (`task_type_cache_seconds`), so the create path and the
hot path pay a dictionary look-up, not a query; a change reaches every sidecar within that time.

The data schema is a JSON Schema checked with the `jsonschema` library under the draft its
`$schema` names (2020-12 when it names none). `$ref` resolves inside the schema only: remote
references are never fetched (a schema must not make the sidecar call out).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from jsonschema import exceptions as schema_errors
from jsonschema import validators
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing.exceptions import Unresolvable
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from backoffice.errors import NotFound, ValidationFailed
from backoffice.queue.models import TaskTypeDefinition
from backoffice.settings import Settings

# The fields an operator sets with PUT (all optional; PUT replaces the whole definition).
DEFINITION_FIELDS = (
    "description",
    "lease_seconds",
    "max_attempts",
    "retry_backoff_seconds",
    "data_schema",
    "retention_days",
)
MAX_MESSAGE_CHARS = 300


class TypeDefaults(NamedTuple):
    """What the hot path takes from a definition; None in a field means the global default."""

    lease_seconds: int | None
    max_attempts: int | None
    retry_backoff_seconds: float | None


@dataclass(frozen=True)
class TaskTypeRecord:
    """A stored definition."""

    task_type: str
    description: str | None
    lease_seconds: int | None
    max_attempts: int | None
    retry_backoff_seconds: float | None
    data_schema: dict[str, Any] | None
    retention_days: int | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


def _validator(schema: dict[str, Any]) -> Any:
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    # Only the drafts' own meta-schemas are known: no remote $ref is ever retrieved.
    return cls(schema, registry=SPECIFICATIONS)


def check_data_schema(schema: dict[str, Any]) -> None:
    """ValidationFailed when `schema` is not a valid JSON Schema (its draft's meta-schema decides)."""
    if not isinstance(schema.get("$schema", ""), str):
        # validator_for looks the value up in a dict: an object there would be a TypeError.
        raise ValidationFailed("data_schema.$schema must be a string (the URI of a JSON Schema draft).")
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = exc.json_path.replace("$", "data_schema", 1)
        raise ValidationFailed(
            f"data_schema is not a valid JSON Schema at {where}: {exc.message[:MAX_MESSAGE_CHARS]}."
        ) from None


def check_data(task_type: str, schema: dict[str, Any], data: dict[str, Any]) -> None:
    """ValidationFailed naming the failing path when `data` does not match the type's schema."""
    try:
        error = schema_errors.best_match(_validator(schema).iter_errors(data))
    except (Unresolvable, RecursionError) as exc:
        # A schema that passed its meta-schema may still point nowhere or loop: the operator's to fix.
        raise ValidationFailed(
            f"The data_schema of task type '{task_type}' cannot be applied ({type(exc).__name__}); "
            "an operator must fix the definition (PUT /api/task-types/{task_type}).",
            code="invalid_data_schema",
        ) from None
    if error is not None:
        where = error.json_path.replace("$", "data", 1)
        raise ValidationFailed(
            f"data does not match the data_schema of task type '{task_type}' at {where}: "
            f"{error.message[:MAX_MESSAGE_CHARS]}.",
            path=where,
        )


class TaskTypeStore:
    """Definitions of task types, read through a short per-process cache."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, TaskTypeRecord | None]] = {}

    def find(self, task_type: str, conn: Connection | None = None) -> TaskTypeRecord | None:
        """The definition of a type, or None (cached for task_type_cache_seconds; read on `conn`
        when given, e.g. inside the caller's transaction)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(task_type)
        if hit is not None and now - hit[0] < self.settings.task_type_cache_seconds:
            return hit[1]
        query = select(TaskTypeDefinition).where(TaskTypeDefinition.task_type == task_type)
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        record = _record(row) if row else None
        with self._lock:
            self._cache[task_type] = (now, record)
        return record

    def peek(self, task_type: str) -> tuple[bool, TaskTypeRecord | None]:
        """(True, the definition or None) when this process's cache has it fresh; (False, None)
        when `find` would read the database (the event loop then reads it in a thread)."""
        with self._lock:
            hit = self._cache.get(task_type)
        if hit is not None and time.monotonic() - hit[0] < self.settings.task_type_cache_seconds:
            return True, hit[1]
        return False, None

    @staticmethod
    def defaults_of(record: TaskTypeRecord | None) -> TypeDefaults | None:
        """What the hot path takes from a definition (None for an undefined type)."""
        if record is None:
            return None
        return TypeDefaults(record.lease_seconds, record.max_attempts, record.retry_backoff_seconds)

    def get(self, task_type: str) -> TaskTypeRecord:
        """The definition of a type (read fresh); NotFound when there is none."""
        self.forget(task_type)
        record = self.find(task_type)
        if record is None:
            raise NotFound(f"Task type '{task_type}' has no definition; create one with PUT.")
        return record

    def defaults_for(self, task_type: str) -> TypeDefaults | None:
        """(lease_seconds, max_attempts, retry_backoff_seconds) of a defined type; None when undefined."""
        return self.defaults_of(self.find(task_type))

    def list(self, task_types: frozenset[str] | None = None) -> list[TaskTypeRecord]:
        """Every definition (only of `task_types` when given), by name."""
        query = select(TaskTypeDefinition).order_by(TaskTypeDefinition.task_type)
        if task_types is not None:
            query = query.where(TaskTypeDefinition.task_type.in_(sorted(task_types)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_record(r) for r in rows]

    def put(self, task_type: str, actor: str, fields: dict[str, Any]) -> tuple[TaskTypeRecord, bool]:
        """Create or replace a definition; (the definition, True when it is new)."""
        values = {name: fields.get(name) for name in DEFINITION_FIELDS}
        if values["data_schema"] is not None:
            check_data_schema(values["data_schema"])
        now = datetime.now(UTC)
        created = True
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(TaskTypeDefinition).values(
                        task_type=task_type,
                        **values,
                        created_at=now,
                        created_by=actor,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
        except IntegrityError:
            # Already defined (also when a concurrent PUT won the insert): replace it.
            created = False
            with self.engine.begin() as conn:
                conn.execute(
                    update(TaskTypeDefinition)
                    .where(TaskTypeDefinition.task_type == task_type)
                    .values(**values, updated_at=now, updated_by=actor)
                )
        return self.get(task_type), created

    def delete(self, task_type: str) -> None:
        """Delete a definition (the type's tasks stay); NotFound when there is none."""
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(TaskTypeDefinition).where(TaskTypeDefinition.task_type == task_type)
            ).rowcount
        self.forget(task_type)
        if not gone:
            raise NotFound(f"Task type '{task_type}' has no definition.")

    def forget(self, task_type: str) -> None:
        """Drop a type from this process's cache (after a change made here)."""
        with self._lock:
            self._cache.pop(task_type, None)


def _record(row: Any) -> TaskTypeRecord:
    return TaskTypeRecord(**{name: row[name] for name in TaskTypeRecord.__dataclass_fields__})
