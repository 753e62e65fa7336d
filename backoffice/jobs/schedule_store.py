"""The schedule overrides (table `job_schedules`; a missing row means prefect.yaml's cron) and the
jobs' audit events (table `job_events`): every change of an override writes one event, in the
same transaction, with who, when and the schedule before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from backoffice.dialects import dialect_of
from backoffice.jobs.models import JobEvent, JobSchedule
from backoffice.jobs.schedule import Schedule

SCHEDULE_SET = "schedule_set"
SCHEDULE_RESET = "schedule_reset"
# Attempts of `set` against writers that keep changing the row under it (each retry sees theirs).
SET_ATTEMPTS = 5


@dataclass(frozen=True)
class ScheduleOverride:
    """An operator's schedule for a job, and who set it when."""

    job_id: str
    schedule: Schedule
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class ScheduleChange:
    """One change of a job's override (None: the catalog's schedule) and the event recording it."""

    job_id: str
    old: ScheduleOverride | None
    new: ScheduleOverride | None
    event_id: int | None  # None when nothing changed (the same schedule again): no event written


@dataclass(frozen=True)
class JobEventRecord:
    """One audit event of a job."""

    id: int
    job_id: str
    event: str
    actor: str
    at: datetime
    details: dict[str, Any]


def _override(row: Any) -> ScheduleOverride:
    return ScheduleOverride(row.job_id, Schedule(row.cron, row.timezone), row.changed_at, row.changed_by)


def _in_force(override: ScheduleOverride | None, catalog: Schedule) -> dict[str, str]:
    source = "override" if override is not None else "catalog"
    return {**(override.schedule if override else catalog).to_json(), "source": source}


class ScheduleStore:
    """Reads and writes the schedule overrides and the jobs' audit events."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)

    def get(self, job_id: str) -> ScheduleOverride | None:
        """The override of `job_id`, None when prefect.yaml's schedule is in force."""
        with self.engine.connect() as conn:
            row = conn.execute(select(JobSchedule).where(JobSchedule.job_id == job_id)).first()
        return _override(row) if row is not None else None

    def all(self, job_ids: list[str]) -> dict[str, ScheduleOverride]:
        """The overrides among `job_ids` (jobs on their catalog schedule are missing)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(JobSchedule).where(JobSchedule.job_id.in_(job_ids))).all()
        return {row.job_id: _override(row) for row in rows}

    def set(
        self, job_id: str, new: Schedule | None, actor: str, catalog: Schedule, now: datetime | None = None
    ) -> ScheduleChange:
        """Put `new` in force for `job_id` (None: back to `catalog`), by `actor`; one audit event.

        Written by compare and set from what was read, so the event's "old" is exactly what this
        change replaced, even with another writer at the same moment.
        """
        for _ in range(SET_ATTEMPTS):
            current = self.get(job_id)
            change = self.compare_and_set(job_id, current, new, actor, catalog, now)
            if change is not None:
                return change
        raise RuntimeError(f"job {job_id}: the schedule kept changing under {SET_ATTEMPTS} attempts")

    def compare_and_set(
        self,
        job_id: str,
        expected: ScheduleOverride | None,
        new: Schedule | None,
        actor: str,
        catalog: Schedule,
        now: datetime | None = None,
    ) -> ScheduleChange | None:
        """Replace the override with `new` only while it is still `expected`; None when it changed.

        Setting the schedule already in force changes nothing and writes no event.
        """
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            if (expected.schedule if expected else None) == new:
                # Nothing to write, but only if `expected` is still what is stored.
                row = conn.execute(select(JobSchedule).where(JobSchedule.job_id == job_id)).first()
                still = (_override(row) if row is not None else None) == expected
                return ScheduleChange(job_id, expected, expected, None) if still else None
            written = None if new is None else ScheduleOverride(job_id, new, now, actor)
            if not self._replace(conn, job_id, expected, written):
                return None
            details = {"old": _in_force(expected, catalog), "new": _in_force(written, catalog)}
            event = SCHEDULE_SET if written is not None else SCHEDULE_RESET
            event_id = conn.execute(
                insert(JobEvent)
                .values(job_id=job_id, event=event, actor=actor, at=now, details=details)
                .returning(JobEvent.id)
            ).scalar_one()
        return ScheduleChange(job_id, expected, written, int(event_id))

    def restore(self, change: ScheduleChange) -> bool:
        """Undo `change` (Prefect refused it) while the override is still what it wrote; its event goes too.

        False when somebody changed the override since: their change stands.
        """
        if change.event_id is None:
            return True
        with self.engine.begin() as conn:
            if not self._replace(conn, change.job_id, change.new, change.old):
                return False
            conn.execute(delete(JobEvent).where(JobEvent.id == change.event_id))
        return True

    def _replace(
        self, conn: Connection, job_id: str, expected: ScheduleOverride | None, new: ScheduleOverride | None
    ) -> bool:
        """Row `expected` → `new` (None: no row), only while the row is `expected`; True when written."""
        stmt: Any
        if expected is None and new is not None:
            # No row expected: insert, unless a concurrent writer inserted one first.
            stmt = self.dialect.insert(JobSchedule).values(**_values(new))
            stmt = stmt.on_conflict_do_nothing(index_elements=[JobSchedule.job_id])
        elif expected is not None and new is not None:
            stmt = update(JobSchedule).where(*_is(expected)).values(**_values(new))
        elif expected is not None:
            stmt = delete(JobSchedule).where(*_is(expected))
        else:
            found = conn.execute(select(JobSchedule.job_id).where(JobSchedule.job_id == job_id)).first()
            return found is None  # none expected, none wanted: "written" while there still is none
        # RETURNING, not rowcount: the ON CONFLICT insert's rowcount is not reliable on psycopg.
        return conn.execute(stmt.returning(JobSchedule.job_id)).first() is not None

    def events(self, job_id: str, limit: int = 50) -> list[JobEventRecord]:
        """The job's audit events, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(limit)
            ).all()
        return [JobEventRecord(r.id, r.job_id, r.event, r.actor, r.at, dict(r.details or {})) for r in rows]


def _values(override: ScheduleOverride) -> dict[str, Any]:
    return {
        "job_id": override.job_id,
        "cron": override.schedule.cron,
        "timezone": override.schedule.timezone,
        "changed_at": override.changed_at,
        "changed_by": override.changed_by,
    }


def _is(override: ScheduleOverride) -> tuple[Any, ...]:
    """WHERE clauses matching the stored row of `override` exactly (changed_at tells versions apart)."""
    return tuple(getattr(JobSchedule, name) == value for name, value in _values(override).items())
