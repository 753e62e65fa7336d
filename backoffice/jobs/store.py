"""The recurring jobs' Enabled record (table `recurring_jobs`; a missing row means the job's
default, `enabled_by_default` in prefect.yaml, true unless it says otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from backoffice.dialects import dialect_of
from backoffice.jobs.models import RecurringJob


@dataclass(frozen=True)
class JobRecord:
    """Whether a job is enabled, and who changed that last (None: never changed = its default)."""

    job_id: str
    enabled: bool
    changed_at: datetime | None = None
    changed_by: str | None = None

    @property
    def stored(self) -> bool:
        """False for a job that has no row (never changed)."""
        return self.changed_at is not None

    @property
    def source(self) -> str:
        """`record` when an Enabled record decides, `default` when the catalog's default does."""
        return "record" if self.stored else "default"


class JobRecordStore:
    """Reads and writes the Enabled records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)

    def get(self, job_id: str, default: bool = True) -> JobRecord:
        """The record of `job_id`; a job without a row is `default` (its `enabled_by_default`)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RecurringJob).where(RecurringJob.job_id == job_id)).first()
        if row is None:
            return JobRecord(job_id, default)
        return JobRecord(row.job_id, bool(row.enabled), row.changed_at, row.changed_by)

    def all(self, job_ids: list[str], defaults: Mapping[str, bool] | None = None) -> dict[str, JobRecord]:
        """The records of `job_ids` (missing rows read as their `defaults`, else as enabled)."""
        defaults = defaults or {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(RecurringJob).where(RecurringJob.job_id.in_(job_ids))).all()
        found = {r.job_id: JobRecord(r.job_id, bool(r.enabled), r.changed_at, r.changed_by) for r in rows}
        missing = {job_id: JobRecord(job_id, defaults.get(job_id, True)) for job_id in job_ids}
        return {job_id: found.get(job_id, missing[job_id]) for job_id in job_ids}

    def set(self, job_id: str, enabled: bool, actor: str, now: datetime | None = None) -> JobRecord:
        """Record `enabled` for `job_id`, by `actor`; one upsert, safe against a concurrent writer."""
        now = now or datetime.now(UTC)
        values = {"job_id": job_id, "enabled": enabled, "changed_at": now, "changed_by": actor}
        # Both dialects spell the upsert the same way (INSERT … ON CONFLICT DO UPDATE).
        stmt = self.dialect.insert(RecurringJob).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[RecurringJob.job_id],
            set_={"enabled": enabled, "changed_at": now, "changed_by": actor},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return JobRecord(job_id, enabled, now, actor)

    def compare_and_set(
        self, expected: JobRecord, enabled: bool, actor: str, now: datetime | None = None
    ) -> JobRecord | None:
        """Record `enabled` only while the record is still `expected`; None when it changed meanwhile.

        The reconciler decides on a record it read before Prefect: a writer that came in between
        (an operator through the API or the CLI) must win, not be overwritten.
        """
        now = now or datetime.now(UTC)
        values = {"enabled": enabled, "changed_at": now, "changed_by": actor}
        if expected.stored:
            stmt: Any = update(RecurringJob).where(*_is(expected)).values(**values)
        else:
            # No row yet: insert it, unless a concurrent writer inserted one first.
            stmt = self.dialect.insert(RecurringJob).values(job_id=expected.job_id, **values)
            stmt = stmt.on_conflict_do_nothing(index_elements=[RecurringJob.job_id])
        with self.engine.begin() as conn:
            # RETURNING, not rowcount: the ON CONFLICT insert's rowcount is not reliable on psycopg.
            written = conn.execute(stmt.returning(RecurringJob.job_id)).first() is not None
        return JobRecord(expected.job_id, enabled, now, actor) if written else None

    def restore(self, written: JobRecord, previous: JobRecord) -> bool:
        """Put `previous` back while the record is still `written` (undo a change Prefect refused).

        False when somebody changed the record since: their change stands.
        """
        if previous.stored:
            stmt: Any = (
                update(RecurringJob)
                .where(*_is(written))
                .values(
                    enabled=previous.enabled, changed_at=previous.changed_at, changed_by=previous.changed_by
                )
            )
        else:
            stmt = delete(RecurringJob).where(*_is(written))  # a missing row: the default, never changed
        with self.engine.begin() as conn:
            return conn.execute(stmt.returning(RecurringJob.job_id)).first() is not None


def _is(record: JobRecord) -> tuple[Any, ...]:
    """WHERE clauses matching the stored row of `record` exactly (changed_at tells versions apart)."""
    return (
        RecurringJob.job_id == record.job_id,
        RecurringJob.enabled == record.enabled,
        RecurringJob.changed_at == record.changed_at,
        RecurringJob.changed_by == record.changed_by,
    )
