"""The Enabled records (recurring_jobs) on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from backoffice.jobs.models import RecurringJob
from backoffice.jobs.store import JobRecord, JobRecordStore


def test_a_missing_row_means_enabled(engine: Engine) -> None:
    store = JobRecordStore(engine)
    assert store.get("Controlling") == JobRecord("Controlling", True)
    assert store.all(["Controlling", "Finish_Transport"]) == {
        "Controlling": JobRecord("Controlling", True),
        "Finish_Transport": JobRecord("Finish_Transport", True),
    }


def test_set_records_who_and_when_and_overwrites(engine: Engine) -> None:
    store = JobRecordStore(engine)
    first = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    store.set("Controlling", False, "alice", now=first)
    assert store.get("Controlling") == JobRecord("Controlling", False, first, "alice")
    later = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    store.set("Controlling", True, "prefect-ui", now=later)
    assert store.get("Controlling") == JobRecord("Controlling", True, later, "prefect-ui")
    assert store.all(["Controlling", "Finish_Transport"])["Finish_Transport"].changed_by is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RecurringJob)).scalar_one() == 1
