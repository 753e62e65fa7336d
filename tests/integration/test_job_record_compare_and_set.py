"""JobRecordStore's compare and set (the reconciler's adoption) and restore (an undone change)."""

from __future__ import annotations

from sqlalchemy import Engine

from backoffice.jobs.store import JobRecord, JobRecordStore

JOB = "Controlling"


def test_compare_and_set_writes_only_over_the_record_it_was_given(engine: Engine) -> None:
    store = JobRecordStore(engine)
    never_changed = store.get(JOB)
    adopted = store.compare_and_set(never_changed, False, "prefect-ui")
    assert adopted is not None and store.get(JOB) == adopted
    assert store.compare_and_set(never_changed, True, "prefect-ui") is None  # a row exists now

    newer = store.set(JOB, True, "ops")
    assert store.compare_and_set(adopted, False, "prefect-ui") is None  # changed meanwhile
    assert store.get(JOB) == newer


def test_restore_puts_the_previous_record_back_unless_changed_since(engine: Engine) -> None:
    store = JobRecordStore(engine)
    written = store.set(JOB, False, "ops")
    assert store.restore(written, JobRecord(JOB, True))
    assert store.get(JOB) == JobRecord(JOB, True)  # no row again

    previous = store.set(JOB, False, "ops")
    written = store.set(JOB, True, "alice")
    assert store.restore(written, previous) and store.get(JOB) == previous
    later = store.set(JOB, True, "bob")
    assert not store.restore(written, previous) and store.get(JOB) == later
