"""The sidecar's periodic duties: one sidecar per PostgreSQL database does them (an advisory lock on
a connection of its own), the lock frees when that connection dies, SQLite's one sidecar always does
them, `BACKOFFICE_RECONCILE=off` keeps a sidecar out, and an unreachable Prefect never stops them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import Engine

from backoffice.db import normalize_url
from backoffice.duties import (
    DUTIES_LOCK_KEY,
    RECONCILER_THREAD,
    AdvisoryLeadership,
    PeriodicDuty,
    SoleLeadership,
    leadership_for,
    reconcile_jobs,
    sidecar_duties,
)
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from tests.servers import free_port
from tests.topology.waits import until


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    """The worker's PostgreSQL test database."""
    return postgres_database


@pytest.fixture
def leaders(pg_url: str) -> Iterator[Callable[[], AdvisoryLeadership]]:
    """Build advisory leaderships on the test database (as many sidecars would); all released after."""
    made: list[AdvisoryLeadership] = []

    def make() -> AdvisoryLeadership:
        made.append(AdvisoryLeadership(pg_url, connect_timeout=5))
        return made[-1]

    yield make
    for leader in made:
        leader.release()


def _lock_holders(url: str) -> list[int]:
    """Backend pids holding the duties' advisory lock in this database."""
    plain = normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (DUTIES_LOCK_KEY,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _terminate(url: str, pid: int) -> None:
    plain = normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_one_holder_and_release_hands_over(leaders: Callable[[], AdvisoryLeadership], pg_url: str) -> None:
    """The first sidecar to try holds the duties, the others do not; a release hands them over."""
    a, b = leaders(), leaders()
    assert a.holds() and not b.holds()
    assert a.holds() and not b.holds()  # holding is kept, not re-won
    assert len(_lock_holders(pg_url)) == 1
    a.release()
    # The server frees the lock when the closed connection's backend exits, a moment later.
    until("the released lock is free", lambda: _lock_holders(pg_url) == [])
    assert b.holds()
    assert not a.holds() and not leaders().holds()  # the old holder, now a standby, and a newcomer


@pytest.mark.postgres
def test_a_dead_connection_frees_the_lock(leaders: Callable[[], AdvisoryLeadership], pg_url: str) -> None:
    """When the holder's connection dies (the sidecar was killed), a standby takes the duties on its
    next try, and the old holder notices on its next try and stands by."""
    a, b = leaders(), leaders()
    assert a.holds()
    [holder] = _lock_holders(pg_url)
    _terminate(pg_url, holder)
    until("the killed backend's lock is free", lambda: _lock_holders(pg_url) == [])
    assert b.holds()
    assert not a.holds()
    assert _lock_holders(pg_url) != [holder] and len(_lock_holders(pg_url)) == 1


def test_sqlite_has_one_sidecar_which_does_the_duties() -> None:
    """On SQLite the one sidecar always does the duties."""
    leadership = leadership_for(Settings(database_url="sqlite:///unused.db"))
    assert isinstance(leadership, SoleLeadership) and leadership.holds()


def test_reconcile_off_keeps_a_sidecar_out(
    make_settings: Callable[..., Settings], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`BACKOFFICE_RECONCILE=off` (as an operator writes it) starts no timer at all."""
    monkeypatch.setenv("BACKOFFICE_RECONCILE", "off")
    assert Settings().reconcile is False
    settings = make_settings(reconcile=False)
    off = sidecar_duties(settings, engine, TaskStore(engine, settings))
    assert off.timers == []
    on = sidecar_duties(make_settings(reconcile=True), engine, TaskStore(engine, settings))
    try:
        assert {t.name for t in on.timers} == {RECONCILER_THREAD, "task-lock-sweeper"}
    finally:
        on.leadership.release()


def test_a_standby_does_nothing_and_a_failing_pass_keeps_the_timer() -> None:
    """A timer runs its work only while its leadership holds, and goes on after a failing pass."""

    class Flag:
        def __init__(self) -> None:
            self.value = False

        def holds(self) -> bool:
            return self.value

        def release(self) -> None:
            pass

    calls: list[bool] = []
    second, standby_checked = threading.Event(), threading.Event()

    def work() -> None:
        calls.append(watched.value)
        if len(calls) == 1:
            raise RuntimeError("the first pass fails")
        second.set()

    class Watched(Flag):
        def holds(self) -> bool:
            standby_checked.set()
            return super().holds()

    watched = Watched()
    duty = PeriodicDuty("test-duty", 0.01, work, watched)
    duty.start()
    try:
        assert standby_checked.wait(30)
        assert calls == []  # asked, but not the holder: no pass
        watched.value = True
        assert second.wait(30), "the timer stopped after a failing pass"
    finally:
        duty.stop()
    assert calls[:2] == [True, True]


def test_unreachable_prefect_is_logged_not_raised(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A reconciliation pass while Prefect is away logs a warning and returns (the next pass retries)."""
    away = f"http://127.0.0.1:{free_port()}/api"
    with (
        temporary_settings(updates={PREFECT_API_URL: away}),
        caplog.at_level(logging.WARNING, logger="backoffice.duties"),
    ):
        reconcile_jobs(engine)
    assert "reconciliation skipped" in caplog.text and "cannot be reached" in caplog.text
