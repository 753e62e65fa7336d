"""Schedule overrides and their audit events (job_schedules, job_events) on PostgreSQL and SQLite;
the Enabled records' default from prefect.yaml."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from backoffice.jobs.models import JobEvent
from backoffice.jobs.schedule import Schedule
from backoffice.jobs.schedule_store import ScheduleOverride, ScheduleStore
from backoffice.jobs.store import JobRecord, JobRecordStore

JOB = "Print_Picking_noon"
CATALOG = Schedule("0 12 * * 1-5", "Europe/Prague")
HALF_PAST = Schedule("30 12 * * 1-5", "Europe/Prague")
ONE = Schedule("0 13 * * 1-5", "UTC")
T1 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


def _events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(JobEvent)).scalar_one())


def test_set_and_reset_record_who_when_and_old_to_new(engine: Engine) -> None:
    store = ScheduleStore(engine)
    assert store.get(JOB) is None and store.all([JOB]) == {}

    first = store.set(JOB, HALF_PAST, "ops", CATALOG, now=T1)
    assert first.old is None and first.new == ScheduleOverride(JOB, HALF_PAST, T1, "ops")
    assert store.get(JOB) == first.new and store.all([JOB, "Controlling"]) == {JOB: first.new}
    store.set(JOB, ONE, "cli:alice", CATALOG, now=T2)
    store.set(JOB, None, "prefect-ui", CATALOG, now=T2)
    assert store.get(JOB) is None

    events = store.events(JOB)
    assert [(e.event, e.actor) for e in events] == [
        ("schedule_reset", "prefect-ui"),
        ("schedule_set", "cli:alice"),
        ("schedule_set", "ops"),
    ]
    assert events[-1].at == T1
    assert events[-1].details == {
        "old": {"cron": "0 12 * * 1-5", "timezone": "Europe/Prague", "source": "catalog"},
        "new": {"cron": "30 12 * * 1-5", "timezone": "Europe/Prague", "source": "override"},
    }
    assert events[0].details["old"] == {"cron": "0 13 * * 1-5", "timezone": "UTC", "source": "override"}
    assert events[0].details["new"]["source"] == "catalog"
    assert store.events("Controlling") == []


def test_the_same_schedule_again_writes_nothing(engine: Engine) -> None:
    store = ScheduleStore(engine)
    store.set(JOB, HALF_PAST, "ops", CATALOG, now=T1)
    again = store.set(JOB, HALF_PAST, "other", CATALOG, now=T2)
    assert again.event_id is None and store.get(JOB) == ScheduleOverride(JOB, HALF_PAST, T1, "ops")
    assert store.set("Controlling", None, "ops", CATALOG).event_id is None  # no override to reset
    assert _events(engine) == 1


def test_compare_and_set_loses_to_a_writer_in_between(engine: Engine) -> None:
    store = ScheduleStore(engine)
    assert store.compare_and_set(JOB, None, HALF_PAST, "prefect-ui", CATALOG, now=T1) is not None
    seen = store.get(JOB)
    store.set(JOB, ONE, "ops", CATALOG, now=T2)  # an operator, after the pass read `seen`
    assert store.compare_and_set(JOB, seen, None, "prefect-ui", CATALOG) is None
    assert store.compare_and_set(JOB, None, HALF_PAST, "prefect-ui", CATALOG) is None  # a row exists
    assert store.get(JOB) == ScheduleOverride(JOB, ONE, T2, "ops")
    assert _events(engine) == 2  # the losers wrote no event


def test_restore_undoes_a_change_and_its_event_unless_changed_since(engine: Engine) -> None:
    store = ScheduleStore(engine)
    change = store.set(JOB, HALF_PAST, "ops", CATALOG, now=T1)
    assert store.restore(change) and store.get(JOB) is None and _events(engine) == 0

    change = store.set(JOB, HALF_PAST, "ops", CATALOG, now=T1)
    newer = store.set(JOB, ONE, "alice", CATALOG, now=T2)
    assert not store.restore(change)  # alice's change stands, and so do both events
    assert store.get(JOB) == newer.new and _events(engine) == 2


def test_a_missing_enabled_record_reads_as_the_jobs_default(engine: Engine) -> None:
    store = JobRecordStore(engine)
    assert store.get(JOB, default=False) == JobRecord(JOB, False)
    assert store.all([JOB, "Controlling"], {JOB: False}) == {
        JOB: JobRecord(JOB, False),
        "Controlling": JobRecord("Controlling", True),
    }
    assert store.get(JOB).source == "default"
    store.set(JOB, True, "ops", now=T1)
    assert store.get(JOB, default=False) == JobRecord(JOB, True, T1, "ops")
    assert store.get(JOB).source == "record"
