"""The recurring jobs' Enabled record (table `recurring_jobs`; a missing row means enabled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from backoffice.dialects import dialect_of
from backoffice.jobs.models import RecurringJob


@dataclass(frozen=True)
class JobRecord:
    """Whether a job is enabled, and who changed that last (None: never changed = enabled)."""

    job_id: str
    enabled: bool
    changed_at: datetime | None = None
    changed_by: str | None = None


class JobRecordStore:
    """Reads and writes the Enabled records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)

    def get(self, job_id: str) -> JobRecord:
        """The record of `job_id`; a job without a row is enabled."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RecurringJob).where(RecurringJob.job_id == job_id)).first()
        if row is None:
            return JobRecord(job_id, True)
        return JobRecord(row.job_id, bool(row.enabled), row.changed_at, row.changed_by)

    def all(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """The records of `job_ids` (missing rows read as enabled)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(RecurringJob).where(RecurringJob.job_id.in_(job_ids))).all()
        found = {r.job_id: JobRecord(r.job_id, bool(r.enabled), r.changed_at, r.changed_by) for r in rows}
        return {job_id: found.get(job_id, JobRecord(job_id, True)) for job_id in job_ids}

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
